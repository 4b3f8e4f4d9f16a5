package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"dsx/internal/atomicfile"
)

// maxHeader bounds the JSON header, as the safetensors library does.
const maxHeader = 100 << 20

type tensor struct {
	name string
	data []float32
	dims []int
}

func (m *Model) tensors() []tensor {
	ts := []tensor{
		{"W", m.W, []int{m.N, m.T}},
		{"b", m.B, []int{m.T}},
	}
	if m.Mean != nil {
		ts = append(ts, tensor{"scaler.mean", m.Mean, []int{m.N}}, tensor{"scaler.scale", m.Scale, []int{m.N}})
	}
	return ts
}

// encode returns the complete safetensors file for m.
func encode(m *Model) ([]byte, error) {
	meta := map[string]string{"format": Format}
	for k, v := range m.Meta {
		meta[k] = v
	}
	if m.Classes != nil {
		c, err := json.Marshal(m.Classes)
		if err != nil {
			return nil, err
		}
		meta["classes"] = string(c)
	}
	var h bytes.Buffer
	mj, err := json.Marshal(meta) // keys sorted: deterministic output
	if err != nil {
		return nil, err
	}
	h.WriteString(`{"__metadata__":`)
	h.Write(mj)
	ts := m.tensors()
	off := 0
	for _, t := range ts {
		end := off + 4*len(t.data)
		name, _ := json.Marshal(t.name)
		shape, _ := json.Marshal(t.dims)
		fmt.Fprintf(&h, `,%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := make([]byte, 8, 8+h.Len()+off)
	binary.LittleEndian.PutUint64(out, uint64(h.Len()))
	out = append(out, h.Bytes()...)
	for _, t := range ts {
		for _, v := range t.data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}

// Save writes m to path as a safetensors file, atomically (see
// [atomicfile.Write]): on any error an existing file at path is left
// untouched.
func Save(path string, m *Model) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	buf, err := encode(m)
	if err != nil {
		return fmt.Errorf("%s: not saved: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
}

type entry struct {
	Dtype       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// Load reads and strictly validates a model written by Save (or any
// safetensors file with the same tensors, in F32 or F64).
func Load(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("%s: truncated: %d bytes, a safetensors file needs at least 8", path, size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case hlen > maxHeader:
		return nil, fmt.Errorf("%s: header length %d exceeds the %d-byte limit: not a safetensors file?", path, hlen, maxHeader)
	case hlen > uint64(size-8):
		return nil, fmt.Errorf("%s: truncated: header length %d goes beyond the end of the file (%d bytes after the length)", path, hlen, size-8)
	case hlen < 2:
		return nil, fmt.Errorf("%s: header length %d is too short for a JSON header", path, hlen)
	}
	rest := make([]byte, size-8)
	if _, err := io.ReadFull(f, rest); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := decode(rest[:hlen], rest[hlen:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func decode(header, data []byte) (*Model, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON header: %w", err)
	}
	m := &Model{}
	if mj, ok := raw["__metadata__"]; ok {
		delete(raw, "__metadata__")
		var meta map[string]string
		if err := json.Unmarshal(mj, &meta); err != nil {
			return nil, fmt.Errorf("invalid __metadata__ (want an object of strings): %w", err)
		}
		if f, ok := meta["format"]; ok && f != Format {
			return nil, fmt.Errorf("metadata format %q, want %q", f, Format)
		}
		if c, ok := meta["classes"]; ok {
			if err := json.Unmarshal([]byte(c), &m.Classes); err != nil {
				return nil, fmt.Errorf("metadata classes is not a JSON array of strings: %w", err)
			}
			if m.Classes == nil {
				m.Classes = []string{}
			}
		}
		for k, v := range meta {
			if reserved[k] {
				continue
			}
			if m.Meta == nil {
				m.Meta = map[string]string{}
			}
			m.Meta[k] = v
		}
	}

	type span struct {
		name       string
		begin, end uint64
	}
	var spans []span
	vals := map[string][]float32{}
	shapes := map[string][]int64{}
	for name, rj := range raw {
		switch name {
		case "W", "b", "scaler.mean", "scaler.scale":
		default:
			return nil, fmt.Errorf("unexpected tensor %q (want W, b, scaler.mean, scaler.scale)", name)
		}
		var e entry
		dec := json.NewDecoder(bytes.NewReader(rj))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: invalid header entry: %w", name, err)
		}
		var size uint64
		switch e.Dtype {
		case "F32":
			size = 4
		case "F64":
			size = 8
		default:
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q (want F32 or F64)", name, e.Dtype)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("tensor %q: data_offsets has %d values, want [begin, end]", name, len(e.DataOffsets))
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b > en {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] end before they begin", name, b, en)
		}
		if en > uint64(len(data)) {
			return nil, fmt.Errorf("truncated: tensor %q needs bytes %d..%d but data has %d", name, b, en, len(data))
		}
		count := uint64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", name, e.Shape)
			}
			if d > 0 && count > uint64(len(data))/uint64(d) {
				return nil, fmt.Errorf("tensor %q: shape %v needs more bytes than the data holds (%d)", name, e.Shape, len(data))
			}
			count *= uint64(d)
		}
		if count*size != en-b {
			return nil, fmt.Errorf("tensor %q: shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d",
				name, e.Shape, e.Dtype, count*size, b, en, en-b)
		}
		spans = append(spans, span{name, b, en})
		shapes[name] = e.Shape
		v := make([]float32, count)
		src := data[b:en]
		for i := range v {
			if size == 4 {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			} else {
				v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
			}
		}
		vals[name] = v
	}

	// The tensors must tile the data exactly: no overlap, no gap, no tail.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos uint64
	for i, s := range spans {
		if s.begin < pos {
			p := spans[i-1]
			return nil, fmt.Errorf("tensors %q (bytes %d..%d) and %q (bytes %d..%d) overlap", p.name, p.begin, p.end, s.name, s.begin, s.end)
		}
		if s.begin > pos {
			return nil, fmt.Errorf("gap in data: bytes %d..%d belong to no tensor (before tensor %q)", pos, s.begin, s.name)
		}
		pos = s.end
	}
	if pos != uint64(len(data)) {
		return nil, fmt.Errorf("data has %d bytes but tensors cover only %d: %d trailing bytes", len(data), pos, uint64(len(data))-pos)
	}

	// Shapes: W is N×T, b is T, scaler.mean and scaler.scale are N.
	ws, ok := shapes["W"]
	if !ok {
		return nil, fmt.Errorf("missing tensor \"W\"")
	}
	if len(ws) != 2 {
		return nil, fmt.Errorf("tensor \"W\": shape %v, want [N, T]", ws)
	}
	m.N, m.T = int(ws[0]), int(ws[1])
	bs, ok := shapes["b"]
	if !ok {
		return nil, fmt.Errorf("missing tensor \"b\"")
	}
	if len(bs) != 1 || bs[0] != ws[1] {
		return nil, fmt.Errorf("shape mismatch: tensor \"b\" has shape %v, want [%d] to match W %v", bs, ws[1], ws)
	}
	for _, name := range []string{"scaler.mean", "scaler.scale"} {
		if s, ok := shapes[name]; ok && (len(s) != 1 || s[0] != ws[0]) {
			return nil, fmt.Errorf("shape mismatch: tensor %q has shape %v, want [%d] to match W %v", name, s, ws[0], ws)
		}
	}
	m.W, m.B = vals["W"], vals["b"]
	m.Mean, m.Scale = vals["scaler.mean"], vals["scaler.scale"]
	if m.Classes != nil && len(m.Classes) != m.T {
		return nil, fmt.Errorf("metadata lists %d class names but W has %d classes", len(m.Classes), m.T)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
