package main

import (
	"fmt"
	"os"

	"dsx/train"
)

// diverged is the error that stops a diverged run: what happened, where,
// and that the model file was left as it was.
func diverged(e *train.DivergedError, out string, lr float64) error {
	kept := ""
	if _, err := os.Stat(out); err == nil {
		kept = " (the model already there is kept)"
	}
	return fmt.Errorf("%v; %s was not written%s; try a smaller --lr than %g", e, out, kept, lr)
}
