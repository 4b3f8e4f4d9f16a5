package model

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"dsx/internal/quote"
)

// FormatVersion is the version of the file layout Save writes: the N of
// Format's "dsx-softmax-vN". It is raised when a change would make an older
// dsx misread a new file (a new tensor it must apply, a metadata key that
// changes what W means); Load reads every version up to it and refuses a
// later one with ErrNewerFormat. Checkpoints (CheckpointFormat) are
// versioned the same way.
const FormatVersion = 1

// ErrNewerFormat is wrapped by Load's error for a file of a format version
// above the one this dsx writes: written by a newer dsx, which this one
// would misread.
var ErrNewerFormat = errors.New("model format newer than this dsx reads")

// formatKinds are the formats Load reads, "NAME-vN", by the name before the
// version, with the latest version of each.
var formatKinds = map[string]string{"dsx-softmax": Format, "dsx-checkpoint": CheckpointFormat}

// parseFormat checks a "format" metadata value: a model or checkpoint
// format of this dsx's version or an earlier one. A later version wraps
// ErrNewerFormat and names what wrote the file (writtenBy, its
// "dsx_version"); anything else is not a dsx file.
func parseFormat(f, writtenBy string) error {
	version := func(f string) (name string, n int, ok bool) {
		name, v, _ := strings.Cut(f, "-v")
		n, err := strconv.Atoi(v)
		return name, n, err == nil && n >= 1 && strconv.Itoa(n) == v
	}
	name, n, ok := version(f)
	latest, known := formatKinds[name]
	_, newest, _ := version(latest)
	switch {
	case !known || !ok:
		return fmt.Errorf("metadata format %s, want %q (a model) or %q (a checkpoint)", quote.Value(f), Format, CheckpointFormat)
	case n > newest:
		by := "a newer dsx"
		if writtenBy != "" {
			by = "dsx " + quote.Value(writtenBy)
		}
		return fmt.Errorf("%w: the file is format %s (version %d), written by %s; this dsx reads versions up to %s: upgrade dsx to read it",
			ErrNewerFormat, quote.Value(f), n, by, latest)
	}
	return nil
}

// Origin describes what wrote a loaded model, for a log line: "format
// dsx-softmax-v1, saved by dsx 0.1.0+357753c1a2b3".
func (m *Model) Origin() string {
	s := "format " + m.FileFormat
	if m.FileFormat == "" {
		s = "no format key (not saved by dsx)"
	}
	if m.DsxVersion == "" {
		return s + ", saved by a dsx from before models recorded its version"
	}
	return s + ", saved by dsx " + m.DsxVersion
}
