package main

import (
	"fmt"
	"os"
	"path/filepath"

	"dsx/data"
)

// checkNotInput refuses an output file (given by flag) that is one of the command's
// inputs, which writing it would replace. Files are compared, not names
// (os.SameFile): a symbolic link, a hard link or ./x for x is the same
// file. An input that is a folder (--data) stands for the data files in
// it. An output that does not exist yet aliases nothing; empty names are
// skipped. The error is a usage error (exit 2), found before any device is
// chosen or data read. It also refuses one stream given as two inputs
// (checkStreamsOnce).
func checkNotInput(flag, out string, inputs ...string) error {
	if err := checkStreamsOnce(inputs...); err != nil {
		return err
	}
	if out == "" {
		return nil
	}
	ost, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet: atomicfile.Check says whether it can be written
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		ist, err := os.Stat(in)
		if err != nil {
			continue // the reader names a missing input
		}
		files := []string{in}
		if ist.IsDir() {
			files = data.DirFiles(in)
		}
		for _, f := range files {
			if fst, err := os.Stat(f); err == nil && os.SameFile(ost, fst) {
				what := in
				if f != in {
					what = fmt.Sprintf("%s (of --data %s)", filepath.Base(f), in)
				}
				return usageErr("%s %s is the input %s (the same file): writing it would replace the input; name another file", flag, out, what)
			}
		}
	}
	return nil
}

// inputs are every file the data flags name (the folder of --data, or
// the default folder when no data flag is given, stands for its files).
func (d *dataFlags) inputs() []string {
	in := []string{d.train, d.test, d.trainLabels, d.testLabels, d.dir}
	if d.dir == "" && d.train == "" && d.test == "" {
		in = append(in, data.DefaultDirs()...)
	}
	return in
}

// checkStreamsOnce refuses one pipe, FIFO or device given as two inputs
// (say --train /dev/stdin --test /dev/stdin): a stream is read once, so
// the second would find it empty, or hold the rest of the first. A
// regular file may be given twice. Nothing is opened: a FIFO is not
// waited on here.
func checkStreamsOnce(inputs ...string) error {
	type seen struct {
		path string
		st   os.FileInfo
	}
	var streams []seen
	for _, in := range inputs {
		if in == "" {
			continue
		}
		st, err := os.Stat(in)
		if err != nil || st.Mode().IsRegular() || st.IsDir() {
			continue // the reader names a missing input
		}
		for _, s := range streams {
			if os.SameFile(s.st, st) {
				return usageErr("%s and %s are the same pipe or device, which is read once: give it as one input, or save it to a file", s.path, in)
			}
		}
		streams = append(streams, seen{in, st})
	}
	return nil
}
