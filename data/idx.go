package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	idxImageMagic = 0x00000803 // unsigned byte, 3 dimensions
	idxLabelMagic = 0x00000801 // unsigned byte, 1 dimension
)

// maxDeflateRatio is the most that deflate, and so gzip, can expand: 1032
// bytes out per byte in (zlib's technical notes). An IDX header inside a
// gzip file of C bytes that claims more than maxDeflateRatio·C bytes is
// known to be truncated before anything is decompressed.
const maxDeflateRatio = 1032

// LoadIDX reads an MNIST or Fashion-MNIST pair of IDX files: images
// (magic 0x00000803, dimensions count×rows×cols, one unsigned byte per
// pixel) and labels (magic 0x00000801, one unsigned byte per label). Either
// file may be gzip-compressed; compression is detected from the content.
// Pixels become float32 features 0..255, unscaled. Classes is 10 unless a
// label of 10 or more appears, in which case it is max label + 1.
//
// Both headers are read and checked (the counts against each other and
// the sizes against the files) before either body; memory follows the
// bytes that really arrive, never the header's claim.
func LoadIDX(imagesPath, labelsPath string) (*Set, error) {
	in, err := Open(imagesPath)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	p, err := openIDXPair(in, labelsPath)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.read()
}

// idxFile is an IDX file whose header has been read and checked; its body
// has not been read.
type idxFile struct {
	r      *reader
	own    *Input // the input opened for this file (nil: the caller's)
	path   string
	dims   []int
	hdr    int    // header bytes
	total  uint64 // body bytes the header implies
	size   int64  // the file's size on disk, 0 when not a regular file
	kind   string // "image" or "label"
	claims string // what the header says, for errors: "3 images of 2×2"
	// progress, when not nil, is told the bytes each read of the body
	// brought (uncompressed).
	progress func(n int64)
}

// openIDX reads an IDX header with the wanted magic and checks what it
// claims against the file: an uncompressed file must hold exactly the
// header's bytes, a gzip file at most maxDeflateRatio times its size. It
// reads the input's body: a stream is read by it alone.
func openIDX(in *Input, magic uint32, kind string) (_ *idxFile, err error) {
	path := in.path
	r, err := in.body()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	ndim := int(magic & 0xff)
	hdr := make([]byte, 4+4*ndim)
	if n, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("file %s: truncated: IDX header needs %d bytes but only %d bytes found", path, len(hdr), n)
		}
		return nil, r.wrap(err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, fmt.Errorf("file %s: not an IDX %s file (magic 0x%08x, want 0x%08x)", path, kind, got, magic)
	}
	f := &idxFile{r: r, path: path, hdr: len(hdr), kind: kind, dims: make([]int, ndim)}
	total := uint64(1)
	for i := range f.dims {
		d := binary.BigEndian.Uint32(hdr[4+4*i:])
		f.dims[i] = int(d)
		total *= uint64(d) // each factor < 2^32 and total ≤ 2^40 so far: no overflow
		if total > 1<<40 || total > math.MaxInt/4 {
			return nil, fmt.Errorf("file %s: implausible IDX dimensions %v", path, f.dims[:i+1])
		}
	}
	f.total = total
	if kind == "image" {
		f.claims = fmt.Sprintf("%d images of %d×%d", f.dims[0], f.dims[1], f.dims[2])
	} else {
		f.claims = fmt.Sprintf("%d labels", f.dims[0])
	}
	f.size = in.size
	if f.size == 0 {
		return f, nil // a pipe: the body's length is checked as it is read
	}
	want := uint64(len(hdr)) + total
	switch {
	case r.gz == nil && uint64(f.size) < want:
		return nil, fmt.Errorf("file %s: truncated: header says %s (%d bytes) but only %d bytes follow",
			path, f.claims, total, uint64(f.size)-uint64(len(hdr)))
	case r.gz == nil && uint64(f.size) > want:
		return nil, fmt.Errorf("file %s: unexpected data at byte offset %d after %s", path, want, f.claims)
	case r.gz != nil && want > maxDeflateRatio*uint64(f.size):
		return nil, fmt.Errorf("file %s: truncated: header says %s (%d bytes) but a gzip file of %d bytes decompresses to at most %d",
			path, f.claims, total, f.size, maxDeflateRatio*uint64(f.size))
	}
	return f, nil
}

func (f *idxFile) Close() error {
	f.r.Close()
	return f.own.Close() // nil-safe
}

// readBody reads exactly the header's number of bytes, handing them to
// put in pieces of at most 64 KiB as they arrive, and checks that nothing
// follows.
func (f *idxFile) readBody(put func(b []byte)) error {
	buf := make([]byte, max(1, min(64<<10, f.total)))
	var got uint64
	for got < f.total {
		n, err := f.r.Read(buf[:min(uint64(len(buf)), f.total-got)])
		put(buf[:n])
		got += uint64(n)
		if f.progress != nil && n > 0 {
			f.progress(int64(n))
		}
		switch {
		case err == io.EOF && got < f.total:
			return fmt.Errorf("file %s: truncated: header says %s (%d bytes) but only %d bytes follow", f.path, f.claims, f.total, got)
		case err != nil && err != io.EOF:
			return f.r.wrap(err) // a corrupt or cut gzip stream says so
		}
	}
	var one [1]byte
	switch n, err := io.ReadFull(f.r, one[:]); {
	case n > 0:
		return fmt.Errorf("file %s: unexpected data at byte offset %d after %s", f.path, uint64(f.hdr)+f.total, f.claims)
	case err != nil && err != io.EOF:
		return f.r.wrap(err)
	}
	return nil
}

// grow returns x with room for n more bytes, growing geometrically but
// never past limit bytes, so that a gzip body is held as it arrives.
func grow(x []byte, n int, limit int) []byte {
	if cap(x)-len(x) >= n {
		return x
	}
	c := min(max(2*cap(x), len(x)+n, 1<<16), limit)
	y := make([]byte, len(x), c)
	copy(y, x)
	return y
}

// sized reports whether the file's size vouches for the header's claim:
// an uncompressed regular file, whose size was checked against it.
func (f *idxFile) sized() bool { return f.r.gz == nil && f.size > 0 }

// pixels reads an image body as float32 features. A file whose size
// vouches for the header is converted straight into the features; a gzip
// body is first held as bytes, grown as they arrive, so that a header's
// claim never sizes an allocation (a quarter of the features' size extra).
func (f *idxFile) pixels() ([]float32, error) {
	if !f.sized() {
		b, err := f.bytes()
		if err != nil {
			return nil, err
		}
		x := make([]float32, len(b))
		for i, p := range b {
			x[i] = float32(p)
		}
		return x, nil
	}
	x := make([]float32, 0, f.total)
	err := f.readBody(func(b []byte) {
		for _, p := range b {
			x = append(x, float32(p))
		}
	})
	return x, err
}

// bytes reads the body as it is, grown as it arrives unless the file's
// size vouches for the header.
func (f *idxFile) bytes() ([]byte, error) {
	limit := int(f.total)
	y := make([]byte, 0, min(limit, 1<<20))
	if f.sized() {
		y = make([]byte, 0, limit)
	}
	err := f.readBody(func(b []byte) {
		y = grow(y, len(b), limit)
		y = append(y, b...)
	})
	return y, err
}

func openIDXImages(in *Input) (*idxFile, error) {
	path := in.path
	f, err := openIDX(in, idxImageMagic, "image")
	if err != nil {
		return nil, err
	}
	switch d := f.dims; {
	case d[1] == 0 || d[2] == 0:
		f.Close()
		return nil, fmt.Errorf("file %s: images of %d×%d pixels have no features", path, d[1], d[2])
	case d[0] == 0:
		f.Close()
		return nil, fmt.Errorf("file %s: header says 0 images: empty set", path)
	}
	return f, nil
}

func openIDXLabels(in *Input) (*idxFile, error) {
	return openIDX(in, idxLabelMagic, "label")
}

// openIDXPath opens path and reads its IDX header; the idxFile closes
// the file.
func openIDXPath(path string, images bool) (*idxFile, error) {
	in, err := Open(path)
	if err != nil {
		return nil, err
	}
	var f *idxFile
	if images {
		f, err = openIDXImages(in)
	} else {
		f, err = openIDXLabels(in)
	}
	if err != nil {
		in.Close()
		return nil, err
	}
	f.own = in
	return f, nil
}

// idxPair is an images file and its labels file (nil for images alone),
// headers checked against each other.
type idxPair struct {
	img, lab *idxFile
}

// openIDXPair reads the headers of the images (the opened input images,
// which the caller closes) and of the labels file at labelsPath ("" for
// none).
func openIDXPair(images *Input, labelsPath string) (*idxPair, error) {
	img, err := openIDXImages(images)
	if err != nil {
		return nil, err
	}
	imagesPath := images.path
	p := &idxPair{img: img}
	if labelsPath == "" {
		return p, nil
	}
	if p.lab, err = openIDXPath(labelsPath, false); err != nil {
		img.Close()
		return nil, err
	}
	if count, n := img.dims[0], p.lab.dims[0]; count != n {
		p.Close()
		return nil, fmt.Errorf("file %s has %d images but file %s has %d labels: count mismatch",
			imagesPath, count, labelsPath, n)
	}
	return p, nil
}

func (p *idxPair) Close() {
	p.img.Close()
	if p.lab != nil {
		p.lab.Close()
	}
}

// bodyBytes is what the pair's bodies hold, from the headers (checked
// against the files' sizes when opened).
func (p *idxPair) bodyBytes() int64 {
	n := p.img.total
	if p.lab != nil {
		n += p.lab.total
	}
	return int64(n)
}

// reportTo makes the pairs' body reads call progress (Options.Progress)
// with the bytes read so far of all of them and their total; nothing when
// progress is nil.
func reportTo(progress func(done, total int64), pairs ...*idxPair) {
	if progress == nil {
		return
	}
	var done, total int64
	for _, p := range pairs {
		total += p.bodyBytes()
	}
	add := func(n int64) {
		done += n
		progress(done, total)
	}
	for _, p := range pairs {
		p.img.progress = add
		if p.lab != nil {
			p.lab.progress = add
		}
	}
}

// features is the number of features per row, from the header.
func (p *idxPair) features() int { return p.img.dims[1] * p.img.dims[2] }

func (p *idxPair) source() string {
	if p.lab == nil {
		return p.img.path
	}
	return p.img.path + " + " + p.lab.path
}

// read reads the bodies into a set.
func (p *idxPair) read() (*Set, error) {
	start := time.Now()
	count := p.img.dims[0]
	s := &Set{Rows: count, N: p.features(), Source: p.source(),
		Stats: LoadStats{Format: "idx", RowsRead: count, Bytes: p.img.size}}
	var err error
	if s.X, err = p.img.pixels(); err != nil {
		return nil, err
	}
	if p.lab != nil {
		s.Stats.Bytes += p.lab.size
		labels, err := p.lab.bytes()
		if err != nil {
			return nil, err
		}
		s.Y = make([]int32, count)
		s.Classes = 10
		for i, l := range labels {
			s.Y[i] = int32(l)
			s.Classes = max(s.Classes, int(l)+1)
		}
	}
	if err := s.validateLabels(); err != nil {
		return nil, err
	}
	s.Stats.LoadSeconds = time.Since(start).Seconds()
	return s, nil
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
	return LoadDirOptions(dir, Options{})
}

// LoadDirOptions is [LoadDir] with o.Features (the number of features
// both sets must have, as a model's N) and o.Classes applied as
// [LoadFile] applies them, and o.Progress called with the bytes of the
// four bodies read so far (uncompressed) and their total. The four headers
// are read and checked against each other and against o before any body
// is read.
func LoadDirOptions(dir string, o Options) (train, test *Set, err error) {
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
	var ins [2]*Input
	for i, p := range []string{paths[0], paths[2]} {
		if ins[i], err = Open(p); err != nil {
			return nil, nil, err
		}
		defer ins[i].Close()
	}
	tr, err := openIDXPair(ins[0], paths[1])
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	te, err := openIDXPair(ins[1], paths[3])
	if err != nil {
		return nil, nil, err
	}
	defer te.Close()
	if tr.features() != te.features() {
		return nil, nil, fmt.Errorf("%s: training images have %d features but test images have %d", dir, tr.features(), te.features())
	}
	if o.Features > 0 && te.features() != o.Features {
		return nil, nil, fmt.Errorf("%s: %w: images have %d features, want %d", dir, ErrFeatureCount, te.features(), o.Features)
	}
	reportTo(o.Progress, tr, te)
	if train, err = tr.read(); err != nil {
		return nil, nil, err
	}
	if test, err = te.read(); err != nil {
		return nil, nil, err
	}
	if train.Classes != test.Classes {
		c := max(train.Classes, test.Classes)
		train.Classes, test.Classes = c, c
	}
	for _, s := range []*Set{train, test} {
		if err := s.SetClasses(o.Classes); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// DirFiles lists the data files of an MNIST-style folder that exist (each
// of the four names, plain or with .gz), for callers that must not
// overwrite them.
func DirFiles(dir string) []string {
	var out []string
	for _, name := range idxNames {
		for _, cand := range []string{name, name + ".gz"} {
			p := filepath.Join(dir, cand)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
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
