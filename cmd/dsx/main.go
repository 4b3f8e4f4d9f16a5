package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"dsx/internal/quote"
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
// usage error.
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
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dsx: unknown command %s\n\n%s", quote.Value(args[0]), usage)
		return 2
	}
	err := f(args[1:], out, stderr)
	if out.err != nil && (err == nil || errors.Is(err, flag.ErrHelp)) {
		err = outputErr(out.err)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "dsx %s: %s\n", args[0], errorLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "dsx %s: %s\n", args[0], errorLine(err))
		return 1
	}
}
