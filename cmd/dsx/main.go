package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"dsx/internal/quote"
	"dsx/model"
	"dsx/version"
)

const usage = `dsx: a dense → softmax → cross-entropy classifier head on CPU or NVIDIA GPU

usage: dsx <command> [flags]

commands:
  train     train on (Fashion-)MNIST, CSV, .npy or safetensors data and save a model (safetensors)
  eval      evaluate a saved model on a labelled test set
  predict   predict the class (--top K classes, --proba probabilities) of each row, labelled or not
  devices   list the backends and devices, or why a device is unusable
  bench     time training steps for a list of shapes
  plan      show the CUDA backend's launch plan and device memory for a layer (no GPU needed)
  version   print dsx's version (also --version)

Every command takes --help. --device auto|cpu|cuda (or DSX_DEVICE) picks the
backend; auto uses the GPU when one is usable and says which and why.
`

func main() {
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	if err := closeStdout(); err != nil && code != 1 {
		fmt.Fprintf(os.Stderr, "dsx: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// run executes one command and returns the exit code: 0 on success, 1 on
// failure (a failed write to stdout included: the output is lost), 2 on a
// usage error, 128 + the signal's number for a run a signal stopped (dsx
// train: 143 for SIGTERM, 130 for SIGINT).
func run(args []string, stdout, stderr io.Writer) int {
	out := &checkedWriter{w: stdout}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(out, usage)
		switch {
		case len(args) == 0:
			return 2
		case out.err != nil:
			fmt.Fprintf(stderr, "dsx: %v\n", outputErr(out.err))
			return 1
		}
		return 0
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) error{
		"train":   cmdTrain,
		"eval":    cmdEval,
		"predict": cmdPredict,
		"devices": cmdDevices,
		"bench":   cmdBench,
		"plan":    cmdPlan,
		"version": cmdVersion,
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	f, ok := cmds[args[0]]
	if !ok {
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		fmt.Fprintf(stderr, "dsx: unknown command %s%s\n\n%s", quote.Value(args[0]), didYouMean(args[0], names, ""), usage)
		return 2
	}
	defer closeWorld() // after the error below is printed
	err := f(args[1:], out, stderr)
	if out.err != nil && (err == nil || errors.Is(err, flag.ErrHelp)) {
		err = outputErr(out.err)
	}
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintf(stderr, "dsx %s: %s\n", args[0], ee.msg)
		}
		return ee.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "dsx %s: %s\n", args[0], errorLine(err))
		return 2
	default:
		if msg := rankError(err); msg != "" {
			fmt.Fprintf(stderr, "dsx %s: %s\n", args[0], quote.Text(msg, maxErrorLine))
		}
		return 1
	}
}

// cmdVersion prints the version of this build (see package version) and
// the model format it writes.
func cmdVersion(args []string, stdout, _ io.Writer) error {
	fs := newFlags("version", "Print dsx's version: the release, the commit it was built from (when built from a git checkout), the Go toolchain, and the model format it writes.", stdout)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	in := version.Get()
	if *asJSON {
		return writeJSON(stdout, map[string]any{"version": in.Version, "short": in.Short(), "revision": in.Revision,
			"time": in.Time, "modified": in.Modified, "go": in.Go, "platform": in.Platform, "model_format": model.FormatVersion})
	}
	_, err := fmt.Fprintf(stdout, "%s\nmodel format %s\n", in, model.Format)
	return err
}
