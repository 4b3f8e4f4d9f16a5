package main

import (
	"fmt"
	"os"
)

// diverged is the error that stops a diverged run (err, a
// *train.DivergedError or, in a data-parallel job, a *train.RankError
// holding one): what happened, where, and that the model file was left as
// it was.
func diverged(err error, out string, lr float64) error {
	kept := ""
	if _, err := os.Stat(out); err == nil {
		kept = " (the model already there is kept)"
	}
	return fmt.Errorf("%w; %s was not written%s; try a smaller --lr than %g", err, out, kept, lr)
}
