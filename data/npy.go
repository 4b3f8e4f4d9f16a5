package data

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"dsx/internal/quote"
)

// npyMagic starts every .npy file (numpy.lib.format).
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header dictionary. numpy writes well under 1 KiB
// (and np.load refuses more than 10000 bytes by default); the bound keeps a
// corrupt length field from claiming memory.
const maxNPYHeader = 1 << 20

// dtype is the element type of a numeric array in a .npy or safetensors
// file: kind 'f' (float), 'i' (signed), 'u' (unsigned) or 'b' (bool), its
// size in bytes and its byte order.
type dtype struct {
	kind byte
	size int
	big  bool // big-endian
}

func (d dtype) String() string {
	names := map[byte]string{'f': "float", 'i': "int", 'u': "uint"}
	if d.kind == 'b' {
		return "bool"
	}
	s := names[d.kind] + strconv.Itoa(8*d.size)
	if d.big && d.size > 1 {
		s += " (big-endian)"
	}
	return s
}

// npyHeader is what a .npy header says.
type npyHeader struct {
	dt      dtype
	shape   []int
	dataOff int64 // where the array data start
}

// parseNPYHeader reads the fixed prefix and the header dictionary of a
// .npy file from r. It checks the format but not the shape against the
// file size; see [npyArray].
func parseNPYHeader(r io.Reader) (npyHeader, error) {
	var pre [10]byte
	if n, err := io.ReadFull(r, pre[:8]); err != nil {
		return npyHeader{}, fmt.Errorf("truncated: a .npy header needs at least 10 bytes, file has %d", n)
	}
	if string(pre[:6]) != npyMagic {
		return npyHeader{}, fmt.Errorf("not a .npy file (no \\x93NUMPY magic)")
	}
	major, minor := pre[6], pre[7]
	if minor != 0 {
		return npyHeader{}, fmt.Errorf("unsupported .npy format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	var hlen, off int
	switch major {
	case 1:
		if n, err := io.ReadFull(r, pre[8:10]); err != nil {
			return npyHeader{}, fmt.Errorf("truncated: a .npy header needs at least 10 bytes, file has %d", 8+n)
		}
		hlen, off = int(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if n, err := io.ReadFull(r, l[:]); err != nil {
			return npyHeader{}, fmt.Errorf("truncated: a .npy %d.%d header needs at least 12 bytes, file has %d", major, minor, 8+n)
		}
		v := binary.LittleEndian.Uint32(l[:])
		if v > maxNPYHeader {
			return npyHeader{}, fmt.Errorf(".npy header length %d exceeds the %d-byte limit", v, maxNPYHeader)
		}
		hlen, off = int(v), 12
	default:
		return npyHeader{}, fmt.Errorf("unsupported .npy format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	buf := make([]byte, hlen)
	if n, err := io.ReadFull(r, buf); err != nil {
		return npyHeader{}, fmt.Errorf("truncated: .npy header length %d but only %d bytes follow", hlen, n)
	}
	h, err := parseNPYDict(string(buf))
	if err != nil {
		return npyHeader{}, fmt.Errorf(".npy header %s: %w", quoteShort(string(buf)), err)
	}
	h.dataOff = int64(off + hlen)
	return h, nil
}

// quoteShort quotes a header, without its padding, for error messages.
func quoteShort(s string) string {
	return quote.Value(strings.TrimRight(s, " \n"))
}

// parseNPYDict parses the header dictionary, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1024), }.
func parseNPYDict(s string) (npyHeader, error) {
	p := &pyLit{s: s}
	var h npyHeader
	var haveDescr, haveOrder, haveShape bool
	if !p.eat('{') {
		return h, fmt.Errorf("not a dictionary")
	}
	for !p.eat('}') {
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return h, fmt.Errorf("expected 'key': value at byte %d", p.i)
		}
		switch key {
		case "descr":
			d, ok := p.str()
			if !ok {
				return h, fmt.Errorf("descr is not a string (a structured dtype?): want a plain numeric dtype such as '<f4'")
			}
			dt, err := parseDescr(d)
			if err != nil {
				return h, err
			}
			h.dt, haveDescr = dt, true
		case "fortran_order":
			b, ok := p.boolean()
			if !ok {
				return h, fmt.Errorf("fortran_order is not True or False")
			}
			if b {
				return h, fmt.Errorf("array is in Fortran order: save np.ascontiguousarray(x) (C order)")
			}
			haveOrder = true
		case "shape":
			sh, ok := p.tuple()
			if !ok {
				return h, fmt.Errorf("shape is not a tuple of at most %d non-negative integers", maxNPYDims)
			}
			h.shape, haveShape = sh, true
		default:
			return h, fmt.Errorf("unexpected key %s", quote.Value(key))
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, fmt.Errorf("expected , or } at byte %d", p.i)
			}
			break
		}
	}
	if p.skip(); p.i != len(p.s) {
		return h, fmt.Errorf("unexpected text after the dictionary at byte %d", p.i)
	}
	if !haveDescr || !haveOrder || !haveShape {
		return h, fmt.Errorf("needs descr, fortran_order and shape")
	}
	return h, nil
}

// parseDescr parses a numpy type string such as '<f4', '|u1' or '>i8'.
func parseDescr(d string) (dtype, error) {
	bad := fmt.Errorf("unsupported dtype %s: want float32, float64 or an integer type", quote.Value(d))
	if len(d) < 3 {
		return dtype{}, bad
	}
	dt := dtype{kind: d[1]}
	switch d[0] {
	case '<', '|':
	case '>':
		dt.big = true
	case '=': // native: numpy never writes it, but it means little-endian on every host dsx runs on
	default:
		return dtype{}, bad
	}
	// The size is one digit as numpy writes it ('<f4'): no sign, no
	// leading zero ('<f04', '<f+4' are not dtypes numpy reads back).
	if len(d) != 3 || d[2] < '1' || d[2] > '9' {
		return dtype{}, bad
	}
	size := int(d[2] - '0')
	dt.size = size
	switch {
	case dt.kind == 'f' && (size == 4 || size == 8):
	case (dt.kind == 'i' || dt.kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8):
	case dt.kind == 'b' && size == 1:
	case dt.kind == 'f' && size == 2:
		return dtype{}, fmt.Errorf("dtype float16 (%s) is not supported: save x.astype(np.float32)", quote.Value(d))
	default:
		return dtype{}, bad
	}
	return dt, nil
}

// pyLit scans the small subset of Python literals a .npy header uses.
type pyLit struct {
	s string
	i int
}

func (p *pyLit) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\n' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyLit) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes (none occur in .npy headers).
func (p *pyLit) str() (string, bool) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	p.i += end + 2
	return v, true
}

func (p *pyLit) boolean() (bool, bool) {
	p.skip()
	for _, w := range []string{"True", "False"} {
		if strings.HasPrefix(p.s[p.i:], w) {
			p.i += len(w)
			return w == "True", true
		}
	}
	return false, false
}

// maxNPYDims bounds a .npy shape's dimensions, as numpy does (NPY_MAXDIMS
// is 64 since numpy 2.0, 32 before): a header of thousands of dimensions
// is an error, and errors quoting a shape stay short.
const maxNPYDims = 64

// tuple reads (d0, d1, ...) of at most maxNPYDims non-negative integers;
// Python 2 wrote them with an L suffix.
func (p *pyLit) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	var out []int
	for !p.eat(')') {
		if len(out) == maxNPYDims {
			return nil, false
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i || j-p.i > 18 { // 18 digits: below 2^63
			return nil, false
		}
		v, _ := strconv.Atoi(p.s[p.i:j])
		out = append(out, v)
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, false
			}
			break
		}
	}
	return out, true
}

// npyElem is a Go type WriteNPY writes.
type npyElem interface {
	float32 | float64 | int32 | int64 | uint8
}

// WriteNPY writes v as a C-order .npy array (format 1.0, little-endian) of
// the given shape, whose product must be len(v).
func WriteNPY[E npyElem](w io.Writer, shape []int, v []E) error {
	nw, err := NewNPYWriter[E](w, shape)
	if err != nil {
		return err
	}
	if err := nw.Write(v...); err != nil {
		return err
	}
	return nw.Close()
}

// NPYWriter streams a C-order .npy array whose shape is known up front,
// such as predictions written batch by batch.
type NPYWriter[E npyElem] struct {
	w    io.Writer
	left int // values still to come
	buf  []byte
}

// NewNPYWriter writes the header of an array of the given shape and
// returns a writer for its values.
func NewNPYWriter[E npyElem](w io.Writer, shape []int) (*NPYWriter[E], error) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return nil, fmt.Errorf("npy: bad shape %v", shape)
		}
		n *= d
	}
	if err := writeNPYHeader(w, npyDescr[E](), shape); err != nil {
		return nil, err
	}
	return &NPYWriter[E]{w: w, left: n, buf: make([]byte, 0, 1<<16)}, nil
}

// Write appends values in C order.
func (nw *NPYWriter[E]) Write(v ...E) error {
	if len(v) > nw.left {
		return fmt.Errorf("npy: %d values more than the shape holds", len(v)-nw.left)
	}
	nw.left -= len(v)
	for _, x := range v {
		switch x := any(x).(type) {
		case float32:
			nw.buf = binary.LittleEndian.AppendUint32(nw.buf, math.Float32bits(x))
		case float64:
			nw.buf = binary.LittleEndian.AppendUint64(nw.buf, math.Float64bits(x))
		case int32:
			nw.buf = binary.LittleEndian.AppendUint32(nw.buf, uint32(x))
		case int64:
			nw.buf = binary.LittleEndian.AppendUint64(nw.buf, uint64(x))
		case uint8:
			nw.buf = append(nw.buf, x)
		}
		if len(nw.buf) > cap(nw.buf)-8 {
			if _, err := nw.w.Write(nw.buf); err != nil {
				return err
			}
			nw.buf = nw.buf[:0]
		}
	}
	return nil
}

// Close flushes what is buffered and checks that the array is complete.
func (nw *NPYWriter[E]) Close() error {
	if nw.left != 0 {
		return fmt.Errorf("npy: %d values missing from the array", nw.left)
	}
	_, err := nw.w.Write(nw.buf)
	nw.buf = nw.buf[:0]
	return err
}

func npyDescr[E npyElem]() string {
	var z E
	switch any(z).(type) {
	case float32:
		return "<f4"
	case float64:
		return "<f8"
	case int32:
		return "<i4"
	case int64:
		return "<i8"
	}
	return "|u1"
}

// writeNPYHeader writes the magic, version 1.0 and the header dictionary,
// padded with spaces so that the data start at a multiple of 64 bytes, as
// numpy does.
func writeNPYHeader(w io.Writer, descr string, shape []int) error {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	sh := strings.Join(dims, ", ")
	if len(shape) == 1 {
		sh += ","
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, sh)
	total := 10 + len(dict) + 1
	dict += strings.Repeat(" ", (64-total%64)%64) + "\n"
	if len(dict) > math.MaxUint16 {
		return fmt.Errorf("WriteNPY: header too long")
	}
	hdr := append([]byte(npyMagic), 1, 0)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(dict)))
	_, err := w.Write(append(hdr, dict...))
	return err
}
