package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar on stderr when it is a terminal; otherwise only the
// per-epoch lines are printed.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	done  int
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total, start: time.Now()}
}

func (p *progress) step(msg string) {
	p.done++
	if !p.tty || (time.Since(p.last) < 100*time.Millisecond && p.done < p.total) {
		return
	}
	p.last = time.Now()
	const width = 30
	fill := width * p.done / max(p.total, 1)
	eta := time.Duration(float64(time.Since(p.start)) * float64(p.total-p.done) / float64(p.done)).Round(time.Second)
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %s  eta %v ", strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*p.done/max(p.total, 1), msg, eta)
}

// line prints a line, clearing the bar first.
func (p *progress) line(msg string) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, msg)
}
