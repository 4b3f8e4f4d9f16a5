package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"dsx/internal/atomicfile"
	"dsx/internal/quote"
	"dsx/internal/safetensors"
)

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
		ts = append(ts, tensor{"scaler.mean", m.Mean, []int{m.N}}, tensor{"scaler.std", m.Std, []int{m.N}})
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

// Load reads and strictly validates a model written by Save, or any
// safetensors file with the same tensors in F32 or F64. A file from before
// scaler.std, holding "scaler.scale" = 1/std, is read too: Std becomes
// 1/scale.
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
		return nil, fmt.Errorf("%s: not a regular file (a pipe or device?): a model is read by its size, so give the model file itself", path)
	}
	h, err := safetensors.ReadHeader(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The header was checked against the file's size: the data section is
	// what the file really holds.
	data := make([]byte, h.DataLen)
	if _, err := f.ReadAt(data, h.DataStart); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := decode(h, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// tensorNames are the tensors a model file may hold.
var tensorNames = map[string]bool{"W": true, "b": true, "scaler.mean": true, "scaler.std": true, "scaler.scale": true}

func decode(h *safetensors.Header, data []byte) (*Model, error) {
	m := &Model{}
	if meta := h.Meta; meta != nil {
		if f, ok := meta["format"]; ok && f != Format {
			return nil, fmt.Errorf("metadata format %s, want %q", quote.Value(f), Format)
		}
		if c, ok := meta["classes"]; ok {
			if err := json.Unmarshal([]byte(c), &m.Classes); err != nil {
				return nil, fmt.Errorf("metadata classes is not a JSON array of strings: %w", quote.Error(err))
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
	vals := map[string][]float32{}
	shapes := map[string][]int64{}
	for _, t := range h.Tensors {
		if !tensorNames[t.Name] {
			return nil, fmt.Errorf("unexpected tensor %s (want W, b, scaler.mean, scaler.std)", quote.Value(t.Name))
		}
		if t.Dtype != "F32" && t.Dtype != "F64" {
			return nil, fmt.Errorf("tensor %s: unsupported dtype %s (want F32 or F64)", quote.Value(t.Name), quote.Value(t.Dtype))
		}
		shapes[t.Name] = t.Shape
		v := make([]float32, t.Count)
		src := data[t.Begin:t.End]
		for i := range v {
			if t.Dtype == "F32" {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			} else {
				v[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
			}
		}
		vals[t.Name] = v
	}

	// Shapes: W is N×T, b is T, the scaler's tensors are N.
	ws, ok := shapes["W"]
	if !ok {
		return nil, fmt.Errorf("missing tensor \"W\"")
	}
	if len(ws) != 2 {
		return nil, fmt.Errorf("tensor \"W\": shape [%s], want [N, T]", quote.Shape(ws, " "))
	}
	m.N, m.T = int(ws[0]), int(ws[1])
	bs, ok := shapes["b"]
	if !ok {
		return nil, fmt.Errorf("missing tensor \"b\"")
	}
	if len(bs) != 1 || bs[0] != ws[1] {
		return nil, fmt.Errorf("shape mismatch: tensor \"b\" has shape [%s], want [%d] to match W %v", quote.Shape(bs, " "), ws[1], ws)
	}
	for _, name := range []string{"scaler.mean", "scaler.std", "scaler.scale"} {
		if s, ok := shapes[name]; ok && (len(s) != 1 || s[0] != ws[0]) {
			return nil, fmt.Errorf("shape mismatch: tensor %q has shape [%s], want [%d] to match W %v", name, quote.Shape(s, " "), ws[0], ws)
		}
	}
	m.W, m.B = vals["W"], vals["b"]
	m.Mean, m.Std = vals["scaler.mean"], vals["scaler.std"]
	if scale, ok := vals["scaler.scale"]; ok {
		if m.Std != nil {
			return nil, fmt.Errorf("both scaler.std and the older scaler.scale (= 1/std): keep one")
		}
		// Files from before scaler.std: scale = 1/std, multiplied in.
		m.Std = make([]float32, len(scale))
		for j, s := range scale {
			if s == 0 {
				return nil, fmt.Errorf("scaler.scale[%d] is 0: no std it could be the inverse of", j)
			}
			m.Std[j] = 1 / s
		}
	}
	if m.Classes != nil && len(m.Classes) != m.T {
		return nil, fmt.Errorf("metadata lists %d class names but W has %d classes", len(m.Classes), m.T)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}
