// Package safetensors reads and checks the header of a safetensors file
// (Hugging Face's format: an 8-byte little-endian header length, a JSON
// header, then the raw little-endian tensor data) without reading the data.
//
// [ReadHeader] checks everything a header can claim against the file's real
// size before anything is allocated for the data: the header length, every
// tensor's data_offsets, and that each shape's element count times the
// dtype's size (computed without overflow) equals its span. The tensors
// must tile the data exactly, as the safetensors library requires. Package
// model reads models with it; package data reads feature tensors.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"unicode/utf8"

	"dsx/internal/quote"
)

// MaxHeader bounds the JSON header, as the safetensors library does.
const MaxHeader = 100 << 20

// MaxDims bounds a tensor's number of dimensions (numpy allows 64), so
// that an error quoting a shape stays short.
const MaxDims = 64

// Tensor is one header entry. Begin and End are byte offsets relative to
// the start of the data section (the file offset is Header.DataStart+Begin).
type Tensor struct {
	Name       string
	Dtype      string
	Shape      []int64
	Begin, End uint64
	Count      uint64 // number of elements, the product of Shape
}

// Header is a parsed and checked safetensors header.
type Header struct {
	Meta      map[string]string // __metadata__, nil when absent
	Tensors   []Tensor          // sorted by Begin
	DataStart int64             // file offset of the data section
	DataLen   uint64            // bytes in the data section
}

// Get returns the tensor called name.
func (h *Header) Get(name string) (Tensor, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Names lists the tensors in file order.
func (h *Header) Names() []string {
	out := make([]string, len(h.Tensors))
	for i, t := range h.Tensors {
		out[i] = t.Name
	}
	return out
}

// DtypeSize is the size in bytes of one element of a safetensors dtype, or
// 0 for a dtype the format does not define.
func DtypeSize(dtype string) int {
	switch dtype {
	case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3":
		return 1
	case "U16", "I16", "F16", "BF16":
		return 2
	case "U32", "I32", "F32":
		return 4
	case "U64", "I64", "F64":
		return 8
	}
	return 0
}

// ReadHeader reads the header of a safetensors file of size bytes through
// r and checks it against size. Errors do not name the file; callers add it.
func ReadHeader(r io.ReaderAt, size int64) (*Header, error) {
	if size < 8 {
		return nil, fmt.Errorf("truncated: %d bytes, a safetensors file needs at least 8", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, err
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case hlen > MaxHeader:
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit: not a safetensors file?", hlen, MaxHeader)
	case hlen > uint64(size-8):
		return nil, fmt.Errorf("truncated: header length %d goes beyond the end of the file (%d bytes after the length)", hlen, size-8)
	case hlen < 2:
		return nil, fmt.Errorf("header length %d is too short for a JSON header", hlen)
	}
	hb := make([]byte, hlen)
	if _, err := r.ReadAt(hb, 8); err != nil {
		return nil, err
	}
	h, err := Parse(hb, uint64(size-8)-hlen)
	if err != nil {
		return nil, err
	}
	h.DataStart = 8 + int64(hlen)
	return h, nil
}

type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Parse checks a JSON header against a data section of dataLen bytes. A
// header that is not valid UTF-8 is an error (naming the metadata key
// whose value holds the bad bytes, when one does): JSON decoding would
// otherwise turn the bytes into U+FFFD without a word.
func Parse(header []byte, dataLen uint64) (*Header, error) {
	if err := checkUTF8(header); err != nil {
		return nil, err
	}
	switch t := bytes.TrimLeft(header, " \t\r\n"); {
	case bytes.HasPrefix(t, []byte("\xef\xbb\xbf")):
		return nil, fmt.Errorf("header starts with a UTF-8 byte order mark: a safetensors header is a plain JSON object")
	case len(t) > 0 && t[0] != '{':
		return nil, fmt.Errorf("header is not a JSON object (it starts with %s): a safetensors header maps tensor names to their entries", quote.Value(t[:min(len(t), 8)]))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON header: %w", quote.Error(err))
	}
	h := &Header{DataLen: dataLen}
	if mj, ok := raw["__metadata__"]; ok {
		delete(raw, "__metadata__")
		if err := json.Unmarshal(mj, &h.Meta); err != nil {
			return nil, fmt.Errorf("invalid __metadata__ (want an object of strings): %w", quote.Error(err))
		}
	}
	for name, rj := range raw {
		var e entry
		dec := json.NewDecoder(bytes.NewReader(rj))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %s: invalid header entry: %w", quote.Value(name), quote.Error(err))
		}
		size := DtypeSize(e.Dtype)
		if size == 0 {
			return nil, fmt.Errorf("tensor %s: unknown dtype %s", quote.Value(name), quote.Value(e.Dtype))
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("tensor %s: data_offsets has %d values, want [begin, end]", quote.Value(name), len(e.DataOffsets))
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b > en {
			return nil, fmt.Errorf("tensor %s: data_offsets [%d, %d] end before they begin", quote.Value(name), b, en)
		}
		if en > dataLen {
			return nil, fmt.Errorf("truncated: tensor %s needs bytes %d..%d but data has %d", quote.Value(name), b, en, dataLen)
		}
		if len(e.Shape) > MaxDims {
			return nil, fmt.Errorf("tensor %s: shape has %d dimensions, more than %d", quote.Value(name), len(e.Shape), MaxDims)
		}
		count, ok := Count(e.Shape)
		if !ok {
			return nil, fmt.Errorf("tensor %s: shape [%s] is negative or its element count overflows", quote.Value(name), quote.Shape(e.Shape, " "))
		}
		hi, need := bits.Mul64(count, uint64(size))
		if hi != 0 || need != en-b {
			return nil, fmt.Errorf("tensor %s: shape [%s] of %s needs %s bytes but data_offsets [%d, %d] span %d",
				quote.Value(name), quote.Shape(e.Shape, " "), e.Dtype, bytesNeeded(hi, need), b, en, en-b)
		}
		h.Tensors = append(h.Tensors, Tensor{Name: name, Dtype: e.Dtype, Shape: e.Shape, Begin: b, End: en, Count: count})
	}
	// The tensors must tile the data exactly: no overlap, no gap, no tail.
	ts := h.Tensors
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		if ts[i].End != ts[j].End {
			return ts[i].End < ts[j].End
		}
		return ts[i].Name < ts[j].Name
	})
	var pos uint64
	for i, t := range ts {
		if t.Begin < pos {
			p := ts[i-1]
			return nil, fmt.Errorf("tensors %s (bytes %d..%d) and %s (bytes %d..%d) overlap", quote.Value(p.Name), p.Begin, p.End, quote.Value(t.Name), t.Begin, t.End)
		}
		if t.Begin > pos {
			return nil, fmt.Errorf("gap in data: bytes %d..%d belong to no tensor (before tensor %s)", pos, t.Begin, quote.Value(t.Name))
		}
		pos = t.End
	}
	if pos != dataLen {
		return nil, fmt.Errorf("data has %d bytes but tensors cover only %d: %d trailing bytes", dataLen, pos, dataLen-pos)
	}
	return h, nil
}

// checkUTF8 reports where a header is not valid UTF-8.
func checkUTF8(header []byte) error {
	if utf8.Valid(header) {
		return nil
	}
	off := 0
	for off < len(header) {
		r, n := utf8.DecodeRune(header[off:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		off += n
	}
	var raw map[string]json.RawMessage
	var meta map[string]json.RawMessage
	if json.Unmarshal(header, &raw) == nil && json.Unmarshal(raw["__metadata__"], &meta) == nil {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !utf8.Valid(meta[k]) {
				return fmt.Errorf("__metadata__ %s: value is not valid UTF-8 (byte %d of the header)", quote.Value(k), off)
			}
		}
	}
	return fmt.Errorf("header is not valid UTF-8 at byte %d (in a metadata key or a tensor name)", off)
}

// Count is the number of elements of a shape; ok is false when a dimension
// is negative or the product overflows uint64.
func Count(shape []int64) (n uint64, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

func bytesNeeded(hi, lo uint64) string {
	if hi != 0 {
		return "more than 2^64"
	}
	return fmt.Sprint(lo)
}
