package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"dsx/graph"
	"dsx/internal/quote"
)

var errUsage = errors.New("usage")

// usageErr marks a bad command line: exit status 2.
func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// cmdFlags is a command's flag set. Its help goes to stdout on --help
// only; a bad flag is a short usage error on stderr, not the whole help.
type cmdFlags struct {
	*flag.FlagSet
	help   bytes.Buffer
	stdout io.Writer
}

// newFlags makes a command's flag set, whose help writes flags --flag as
// the README does.
func newFlags(name, summary string, stdout io.Writer) *cmdFlags {
	c := &cmdFlags{FlagSet: flag.NewFlagSet("dsx "+name, flag.ContinueOnError), stdout: stdout}
	c.SetOutput(io.Discard) // the flag package's own messages write -flag
	c.Usage = func() {
		c.help.Reset()
		fmt.Fprintf(&c.help, "usage: dsx %s [flags]\n\n%s\n\nflags:\n", name, strings.TrimSpace(summary))
		printFlags(&c.help, c.FlagSet)
	}
	return c
}

// printFlags is flag.PrintDefaults with two dashes, and without a default
// for flags whose default is "none".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if arg != "" {
			head += " " + arg
		}
		fmt.Fprintf(w, "%s\n    \t%s", head, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch def := f.DefValue; {
		case def == "" || def == "0" || def == "false":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			fmt.Fprintf(w, " (default %q)", def)
		default:
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}

// parse parses flags: --help prints the help to stdout; a parse error is a
// usage error that names the flag as --flag.
func parse(fs *cmdFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, werr := fs.stdout.Write(fs.help.Bytes())
			if werr != nil {
				return werr
			}
			return err
		}
		msg := strings.NewReplacer("defined: -", "defined: --", "flag -", "flag --").Replace(shortenArgs(err.Error(), args))
		hint := ""
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			var names []string
			fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
			hint = didYouMean(name, names, "--")
		}
		return usageErr("%s%s (dsx %s --help lists the flags)", msg, hint, strings.TrimPrefix(fs.Name(), "dsx "))
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %s", quote.Value(fs.Arg(0)))
	}
	return nil
}

// shortenArgs replaces, in a message of the flag package (which quotes a
// bad value or names an unknown flag in full), every long argument, flag
// name or value with a short quote of it.
func shortenArgs(msg string, args []string) string {
	var parts []string
	for _, a := range args {
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		parts = append(parts, a, name, value)
	}
	for _, p := range parts {
		if len(p) > quote.Max {
			msg = strings.ReplaceAll(msg, strconv.Quote(p), quote.Value(p))
			msg = strings.ReplaceAll(msg, p, quote.Value(p))
		}
	}
	return msg
}

// optInt is an integer flag that may be unset; its help shows no default.
type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.Itoa(o.v)
}

func (o *optInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%s is not an integer", quote.Value(s))
	}
	o.v, o.set = v, true
	return nil
}

// lossFlags are the options of torch.nn.CrossEntropyLoss.
type lossFlags struct {
	reduction, weights string
	ignore             optInt
	smoothing          float64
	cap, zLambda       float64
}

func (l *lossFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.reduction, "reduction", "mean", "loss reduction: mean, sum or none (none trains on the sum)")
	fs.StringVar(&l.weights, "class-weights", "", "comma-separated weight per class")
	fs.Var(&l.ignore, "ignore-index", "`label` whose rows are ignored (default: none)")
	fs.Float64Var(&l.smoothing, "label-smoothing", 0, "label smoothing ε in [0, 1]")
	fs.Float64Var(&l.cap, "softcap", 0, "cap logits to C·tanh(z/C) before the softmax (Gemma 2); 0: off")
	fs.Float64Var(&l.zLambda, "z-loss", 0, "add λ·lse² per row (PaLM's z-loss); 0: off")
}

// options checks the flags and returns the loss options; T < 1 checks what
// does not depend on the number of classes.
func (l *lossFlags) options(T int) (graph.LossOptions, error) {
	red, err := graph.ParseReduction(l.reduction)
	if err != nil {
		return graph.LossOptions{}, usageErr("--reduction: %v", err)
	}
	o := graph.LossOptions{Reduction: red, LabelSmoothing: l.smoothing, Softcap: l.cap, ZLoss: l.zLambda}
	if l.ignore.set {
		o.UseIgnoreIndex, o.IgnoreIndex = true, l.ignore.v
	}
	if l.weights != "" {
		for i, f := range strings.Split(l.weights, ",") {
			w, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil {
				return o, usageErr("--class-weights: item %d %s is not a number", i+1, quote.Value(f))
			}
			o.ClassWeights = append(o.ClassWeights, w)
		}
	}
	check := T
	if T < 1 {
		check = len(o.ClassWeights) // the count is checked once T is known
	}
	if err := o.Validate(check); err != nil {
		return o, usageErr("%v", err)
	}
	return o, nil
}

// positive checks that flags are finite and > 0.
func positive(vals map[string]float64) error {
	for name, v := range vals {
		if !(v > 0) || math.IsInf(v, 0) {
			return usageErr("--%s %v: want a finite value > 0", name, v)
		}
	}
	return nil
}

// nonNegative checks that flags are finite and ≥ 0, whether or not the
// run uses them (--momentum NaN is an error under Adam too, which ignores
// momentum, rather than passing unseen).
func nonNegative(vals map[string]float64) error {
	for name, v := range vals {
		if !(v >= 0) || math.IsInf(v, 0) {
			return usageErr("--%s %v: want a finite value ≥ 0", name, v)
		}
	}
	return nil
}
