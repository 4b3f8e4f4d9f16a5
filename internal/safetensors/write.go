package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"unsafe"

	"dsx/internal/quote"
)

// Entry is one tensor to write: its raw little-endian bytes (LE makes them
// from a float slice).
type Entry struct {
	Name  string
	Dtype string // "F32", "F64", ...
	Shape []int
	Data  []byte
}

// ChecksumsKey is the metadata key under which Write records checksums
// (when asked to) and Verify checks them: a JSON object mapping each
// tensor's name to the CRC-32C (Castagnoli) of its bytes, and
// "__metadata__" to that of the other metadata (json.Marshal of the map
// without this key: keys sorted, so the bytes are deterministic), each as
// 8 hex digits. CRC-32C catches a truncated, torn or bit-flipped file at
// several GB/s (hardware instructions on amd64 and arm64), where a
// cryptographic hash would add seconds to a checkpoint written during a
// preemption's grace period; it guards against accidents, not attackers.
const ChecksumsKey = "checksums"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) string { return fmt.Sprintf("%08x", crc32.Checksum(b, castagnoli)) }

// metaCRC is the checksum of meta without ChecksumsKey.
func metaCRC(meta map[string]string) (string, error) {
	m := maps.Clone(meta)
	delete(m, ChecksumsKey)
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return crc(b), nil
}

// Write writes a safetensors file: the 8-byte header length, the JSON
// header (meta as "__metadata__", then the entries in order, laid out
// contiguously; padded with spaces to a multiple of 8 bytes), then each
// entry's bytes, streamed from the caller's slices (nothing is copied).
// With checksums, meta gets ChecksumsKey (meta itself is not changed).
func Write(w io.Writer, meta map[string]string, entries []Entry, checksums bool) error {
	if checksums {
		sums := map[string]string{}
		for _, e := range entries {
			sums[e.Name] = crc(e.Data)
		}
		mc, err := metaCRC(meta)
		if err != nil {
			return err
		}
		sums["__metadata__"] = mc
		j, err := json.Marshal(sums)
		if err != nil {
			return err
		}
		meta = maps.Clone(meta)
		meta[ChecksumsKey] = string(j)
	}
	var h bytes.Buffer
	h.WriteString(`{`)
	if meta != nil {
		mj, err := json.Marshal(meta) // keys sorted: deterministic output
		if err != nil {
			return err
		}
		h.WriteString(`"__metadata__":`)
		h.Write(mj)
	}
	off := 0
	for i, e := range entries {
		if size := DtypeSize(e.Dtype); size == 0 || len(e.Data)%size != 0 {
			return fmt.Errorf("tensor %s: %d bytes of %s", quote.Value(e.Name), len(e.Data), quote.Value(e.Dtype))
		}
		if meta != nil || i > 0 {
			h.WriteByte(',')
		}
		end := off + len(e.Data)
		name, _ := json.Marshal(e.Name)
		shape, _ := json.Marshal(e.Shape)
		if e.Shape == nil {
			shape = []byte("[]")
		}
		fmt.Fprintf(&h, `%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, name, e.Dtype, shape, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(h.Len()))); err != nil {
		return err
	}
	if _, err := w.Write(h.Bytes()); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := w.Write(e.Data); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a safetensors file whole: its checked header and its data
// section (ReadHeader checks the header against the file's size before
// anything is allocated for the data, so memory is bounded by what the
// file holds). Errors name path.
func ReadFile(path string) (*Header, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file (a pipe or device?): a safetensors file is read by its size, so give the file itself", path)
	}
	h, err := ReadHeader(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	data := make([]byte, h.DataLen)
	if _, err := f.ReadAt(data, h.DataStart); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, data, nil
}

// Verify checks the checksums a header records (ChecksumsKey) against
// the data section data (the bytes after the header) and the metadata;
// a header without them passes. A mismatch names what does not match.
func Verify(h *Header, data []byte) error {
	raw, ok := h.Meta[ChecksumsKey]
	if !ok {
		return nil
	}
	var sums map[string]string
	if err := json.Unmarshal([]byte(raw), &sums); err != nil {
		return fmt.Errorf("metadata %s is not a JSON object of strings: the header is corrupted", ChecksumsKey)
	}
	if want, ok := sums["__metadata__"]; ok {
		got, err := metaCRC(h.Meta)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("metadata: checksum %s, recorded %s: the header is corrupted", got, quote.Value(want))
		}
	}
	for _, t := range h.Tensors {
		want, ok := sums[t.Name]
		if !ok {
			return fmt.Errorf("tensor %s has no recorded checksum: the header is corrupted", quote.Value(t.Name))
		}
		if got := crc(data[t.Begin:t.End]); got != want {
			return fmt.Errorf("tensor %s: checksum %s, recorded %s: the data are corrupted", quote.Value(t.Name), got, quote.Value(want))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(sums)) {
		if _, ok := h.Get(n); !ok && n != "__metadata__" {
			return fmt.Errorf("tensor %s has a recorded checksum but is not in the file: the header is corrupted", quote.Value(n))
		}
	}
	return nil
}

// littleEndian is whether this machine stores numbers little-endian, as
// safetensors does.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

// LE returns the little-endian bytes of v: a view of v's memory on a
// little-endian machine (no copy), a converted copy elsewhere.
func LE[E float32 | float64 | int32](v []E) []byte {
	if len(v) == 0 {
		return []byte{}
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
	}
	out, _ := binary.Append(nil, binary.LittleEndian, v)
	return out
}

// Floats decodes a tensor's F32 or F64 little-endian bytes into []F
// (converting between the two); another dtype is an error.
func Floats[F float32 | float64](t Tensor, data []byte) ([]F, error) {
	src := data[t.Begin:t.End]
	out := make([]F, t.Count)
	switch t.Dtype {
	case "F32":
		for i := range out {
			out[i] = F(math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case "F64":
		for i := range out {
			out[i] = F(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %s: dtype %s, want F32 or F64", quote.Value(t.Name), quote.Value(t.Dtype))
	}
	return out, nil
}
