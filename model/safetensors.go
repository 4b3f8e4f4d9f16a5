package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"dsx/internal/atomicfile"
	"dsx/internal/quote"
	"dsx/internal/safetensors"
	"dsx/version"
)

// entries are the model's tensors as Save writes them.
func (m *Model) entries() []safetensors.Entry {
	es := []safetensors.Entry{
		{Name: "W", Dtype: "F32", Shape: []int{m.N, m.T}, Data: safetensors.LE(m.W)},
		{Name: "b", Dtype: "F32", Shape: []int{m.T}, Data: safetensors.LE(m.B)},
	}
	if m.Mean != nil {
		es = append(es, safetensors.Entry{Name: "scaler.mean", Dtype: "F32", Shape: []int{m.N}, Data: safetensors.LE(m.Mean)},
			safetensors.Entry{Name: "scaler.std", Dtype: "F32", Shape: []int{m.N}, Data: safetensors.LE(m.Std)})
	}
	return es
}

// Metadata is the "__metadata__" of m's file under format (Format, or
// CheckpointFormat for package checkpoint): "format", "dsx_version" (this
// build's version.Short()), "classes" and m.Meta.
func (m *Model) Metadata(format string) (map[string]string, error) {
	meta := map[string]string{"format": format, "dsx_version": version.Short()}
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
	return meta, nil
}

// encode returns the complete safetensors file for m.
func encode(m *Model) ([]byte, error) {
	meta, err := m.Metadata(Format)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := safetensors.Write(&b, meta, m.entries(), false); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
// 1/scale; so are files without "dsx_version". A file of a later format
// version than this dsx writes is an error wrapping ErrNewerFormat.
func Load(path string) (*Model, error) {
	h, data, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Decode(h, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// tensorNames are the tensors a model file may hold.
var tensorNames = map[string]bool{"W": true, "b": true, "scaler.mean": true, "scaler.std": true, "scaler.scale": true}

// Decode is Load for a file already read (safetensors.ReadFile): h its
// header, data its data section. Package checkpoint reads the model a
// checkpoint holds with it.
func Decode(h *safetensors.Header, data []byte) (*Model, error) {
	m := &Model{}
	ckpt := false
	if meta := h.Meta; meta != nil {
		m.DsxVersion = meta["dsx_version"]
		if f, ok := meta["format"]; ok {
			if err := parseFormat(f, m.DsxVersion); err != nil {
				return nil, err
			}
			m.FileFormat, ckpt = f, strings.HasPrefix(f, "dsx-checkpoint-")
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
			if reserved[k] || ckpt && trainerName(k) {
				continue
			}
			if m.Meta == nil {
				m.Meta = map[string]string{}
			}
			m.Meta[k] = v
		}
	}
	// A file that records checksums (a checkpoint does) is checked whole:
	// a model torn or corrupted anywhere is refused.
	if err := safetensors.Verify(h, data); err != nil {
		return nil, err
	}
	vals := map[string][]float32{}
	shapes := map[string][]int64{}
	for _, t := range h.Tensors {
		if ckpt && trainerName(t.Name) {
			continue
		}
		if !tensorNames[t.Name] {
			return nil, fmt.Errorf("unexpected tensor %s (want W, b, scaler.mean, scaler.std)", quote.Value(t.Name))
		}
		if t.Dtype != "F32" && t.Dtype != "F64" {
			return nil, fmt.Errorf("tensor %s: unsupported dtype %s (want F32 or F64)", quote.Value(t.Name), quote.Value(t.Dtype))
		}
		shapes[t.Name] = t.Shape
		v, err := safetensors.Floats[float32](t, data)
		if err != nil {
			return nil, err
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
