package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar on stderr when it is a terminal, for training steps
// or bytes read; otherwise only the lines printed with line appear.
type progress struct {
	w     io.Writer
	tty   bool
	total int64
	done  int64
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, tty: isTerminal(w), total: int64(total), start: time.Now()}
}

// isTerminal reports whether w is a character device (a terminal), or a
// writer that says it is one (the tests' stand-in for a terminal).
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ Terminal() bool }); ok {
		return t.Terminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// step counts one of total steps.
func (p *progress) step(msg string) { p.set(p.done+1, msg) }

// bytes sets the bytes done of total.
func (p *progress) bytes(done, total int64, msg string) {
	p.total = total
	p.set(done, msg)
}

// set draws the bar at done of total, at most ten times a second.
func (p *progress) set(done int64, msg string) {
	p.done = done
	if !p.tty || (time.Since(p.last) < 100*time.Millisecond && p.done < p.total) {
		return
	}
	p.last = time.Now()
	const width = 30
	total := max(p.total, 1)
	fill := int(min(width*p.done/total, width))
	eta := time.Duration(0)
	if p.done > 0 {
		eta = time.Duration(float64(time.Since(p.start)) * float64(p.total-p.done) / float64(p.done)).Round(time.Second)
	}
	fmt.Fprintf(p.w, "\r[%s%s] %3d%% %s  eta %v ", strings.Repeat("#", fill), strings.Repeat(".", width-fill), 100*p.done/total, msg, eta)
	p.drawn = true
}

// clear erases the bar, if one is drawn.
func (p *progress) clear() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// line prints a line, clearing the bar first.
func (p *progress) line(msg string) {
	p.clear()
	fmt.Fprintln(p.w, msg)
}
