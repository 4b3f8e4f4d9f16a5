package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	idxImageMagic = 0x00000803 // unsigned byte, 3 dimensions
	idxLabelMagic = 0x00000801 // unsigned byte, 1 dimension
)

// LoadIDX reads an MNIST or Fashion-MNIST pair of IDX files: images
// (magic 0x00000803, dimensions count×rows×cols, one unsigned byte per
// pixel) and labels (magic 0x00000801, one unsigned byte per label). Either
// file may be gzip-compressed; compression is detected from the content.
// Pixels become float32 features 0..255, unscaled. Classes is 10 unless a
// label of 10 or more appears, in which case it is max label + 1.
func LoadIDX(imagesPath, labelsPath string) (*Set, error) {
	start := time.Now()
	pix, count, rows, cols, err := readIDXImages(imagesPath)
	if err != nil {
		return nil, err
	}
	labels, err := readIDXLabels(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != count {
		return nil, fmt.Errorf("file %s has %d images but file %s has %d labels: count mismatch",
			imagesPath, count, labelsPath, len(labels))
	}
	s := &Set{
		X:       make([]float32, len(pix)),
		Y:       make([]int32, count),
		Rows:    count,
		N:       rows * cols,
		Classes: 10,
		Source:  imagesPath + " + " + labelsPath,
		Stats:   LoadStats{Format: "idx", RowsRead: count, Bytes: fileSize(imagesPath) + fileSize(labelsPath)},
	}
	for i, p := range pix {
		s.X[i] = float32(p)
	}
	for i, l := range labels {
		s.Y[i] = int32(l)
		if int(l) >= s.Classes {
			s.Classes = int(l) + 1
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Stats.LoadSeconds = time.Since(start).Seconds()
	return s, nil
}

// readIDX reads an IDX header with the wanted magic and ndim dimensions,
// then exactly the number of bytes those dimensions imply.
func readIDX(path string, magic uint32, kind string, describe func(dims []int) string) (data []byte, dims []int, err error) {
	r, err := open(path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	ndim := int(magic & 0xff)
	hdr := make([]byte, 4+4*ndim)
	if n, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, fmt.Errorf("file %s: truncated: IDX header needs %d bytes but only %d bytes found", path, len(hdr), n)
		}
		return nil, nil, r.wrap(err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, nil, fmt.Errorf("file %s: not an IDX %s file (magic 0x%08x, want 0x%08x)", path, kind, got, magic)
	}
	total := uint64(1)
	dims = make([]int, ndim)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4+4*i:])
		dims[i] = int(d)
		total *= uint64(d) // each factor < 2^32; overflow checked below
		if total > 1<<40 {
			return nil, nil, fmt.Errorf("file %s: implausible IDX dimensions %v", path, dims[:i+1])
		}
	}
	// Read at most total+1 bytes: allocation follows what is really there,
	// so a corrupt header cannot make us allocate terabytes.
	data, err = io.ReadAll(io.LimitReader(r, int64(total)+1))
	if err != nil {
		return nil, nil, r.wrap(err)
	}
	switch {
	case uint64(len(data)) < total:
		return nil, nil, fmt.Errorf("file %s: truncated: header says %s (%d bytes) but only %d bytes follow",
			path, describe(dims), total, len(data))
	case uint64(len(data)) > total:
		return nil, nil, fmt.Errorf("file %s: unexpected data at byte offset %d after %s", path, uint64(len(hdr))+total, describe(dims))
	}
	return data, dims, nil
}

func readIDXImages(path string) (pix []byte, count, rows, cols int, err error) {
	data, dims, err := readIDX(path, idxImageMagic, "image", func(d []int) string {
		return fmt.Sprintf("%d images of %d×%d", d[0], d[1], d[2])
	})
	if err != nil {
		return nil, 0, 0, 0, err
	}
	if dims[1] == 0 || dims[2] == 0 {
		return nil, 0, 0, 0, fmt.Errorf("file %s: images of %d×%d pixels have no features", path, dims[1], dims[2])
	}
	if dims[0] == 0 {
		return nil, 0, 0, 0, fmt.Errorf("file %s: header says 0 images: empty set", path)
	}
	return data, dims[0], dims[1], dims[2], nil
}

func readIDXLabels(path string) ([]byte, error) {
	data, _, err := readIDX(path, idxLabelMagic, "label", func(d []int) string {
		return fmt.Sprintf("%d labels", d[0])
	})
	return data, err
}

// idxNames are the four files of an MNIST-style folder.
var idxNames = [4]string{
	"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
	"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
}

// LoadDir loads the training and test sets from a folder holding
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each optionally with a .gz suffix (the plain
// name is preferred when both exist). The error lists every missing file.
func LoadDir(dir string) (train, test *Set, err error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s: not a directory", dir)
	}
	var paths [4]string
	var missing []string
	for i, name := range idxNames {
		for _, cand := range []string{name, name + ".gz"} {
			p := filepath.Join(dir, cand)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				paths[i] = p
				break
			}
		}
		if paths[i] == "" {
			missing = append(missing, name+"[.gz]")
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%s: missing %s", dir, strings.Join(missing, ", "))
	}
	if train, err = LoadIDX(paths[0], paths[1]); err != nil {
		return nil, nil, err
	}
	if test, err = LoadIDX(paths[2], paths[3]); err != nil {
		return nil, nil, err
	}
	if train.N != test.N {
		return nil, nil, fmt.Errorf("%s: training images have %d features but test images have %d", dir, train.N, test.N)
	}
	if train.Classes != test.Classes {
		c := max(train.Classes, test.Classes)
		train.Classes, test.Classes = c, c
	}
	return train, test, nil
}

// DefaultDirs lists the folders where Debian packages install MNIST-style
// data sets, most specific first: dataset-fashion-mnist installs into
// /usr/share/datasets/fashion-mnist, and an MNIST package would follow the
// same convention. Callers try them in order when the
// user names no data folder; a folder may well be absent.
func DefaultDirs() []string {
	return []string{
		"/usr/share/datasets/fashion-mnist",
		"/usr/share/datasets/mnist",
	}
}
