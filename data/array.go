package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"unsafe"

	"dsx/internal/quote"
	"dsx/internal/safetensors"
)

// chunkBytes is how much of an array is read per system call: small enough
// to stay in cache while it is checked (and converted), large enough that
// the calls cost nothing next to the copy.
const chunkBytes = 1 << 20

// littleHost reports whether this machine stores numbers little-endian, as
// .npy files written on it and every safetensors file do; then float32
// data are read straight into the []float32 that holds them.
var littleHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// array is a C-order numeric array stored raw in a file: a .npy file or a
// tensor of a safetensors file. Its shape has been checked against the
// file's real size before anything is allocated for it.
type array struct {
	f      *os.File
	path   string
	what   string // "" for a .npy file, `tensor "x"` in a safetensors file
	off    int64  // where its data start
	dt     dtype
	shape  []int
	count  int  // elements
	mapped bool // readFeatures's dst is the file's own mapping: check only
}

func (a *array) size() int64 { return int64(a.count) * int64(a.dt.size) }

// where names the array in errors: "file F" or "file F: tensor "x"".
func (a *array) where() string {
	if a.what == "" {
		return "file " + a.path
	}
	return "file " + a.path + ": " + a.what
}

func (a *array) shapeString() string {
	if len(a.shape) == 1 {
		return fmt.Sprintf("(%d,)", a.shape[0])
	}
	return "(" + quote.Shape(a.shape, ", ") + ")"
}

// elements multiplies a shape out; ok is false when the element count or
// its size in bytes overflows an int.
func elements(shape []int, elemSize int) (n int, ok bool) {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	v, ok := safetensors.Count(dims)
	if hi, lo := bits.Mul64(v, uint64(elemSize)); !ok || hi != 0 || lo > math.MaxInt {
		return 0, false // the bytes, and so the count, must fit an int
	}
	return int(v), true
}

// openNPY reads the header of a .npy file and checks that the file holds
// exactly the data its shape says: a truncated file, trailing data or a
// shape whose size overflows is an error naming the file.
func openNPY(f *os.File, path string, size int64) (*array, error) {
	h, err := parseNPYHeader(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	a := &array{f: f, path: path, off: h.dataOff, dt: h.dt, shape: h.shape}
	n, ok := elements(h.shape, h.dt.size)
	if !ok {
		return nil, fmt.Errorf("file %s: shape %s of %s overflows: corrupt header", path, a.shapeString(), h.dt)
	}
	a.count = n
	have := size - h.dataOff
	switch need := a.size(); {
	case have < need:
		return nil, fmt.Errorf("file %s: truncated: header says shape %s of %s (%d bytes) but only %d bytes follow",
			path, a.shapeString(), h.dt, need, have)
	case have > need:
		return nil, fmt.Errorf("file %s: %d bytes of unexpected data after the array of shape %s of %s",
			path, have-need, a.shapeString(), h.dt)
	}
	return a, nil
}

// matrix returns the rows and features per row of a features array: shape
// (rows, features) or (rows, d1, d2, ...) with features = d1·d2·...
func (a *array) matrix() (rows, n int, err error) {
	if a.dt.kind == 'b' {
		return 0, 0, fmt.Errorf("%s: features of dtype bool: want numbers", a.where())
	}
	if len(a.shape) < 2 {
		return 0, 0, fmt.Errorf("%s: features of shape %s: want (rows, features); for one feature per row save x.reshape(-1, 1)", a.where(), a.shapeString())
	}
	rows, n = a.shape[0], 1
	for _, d := range a.shape[1:] {
		n *= d // no overflow: the product of all dims fits
	}
	switch {
	case rows == 0:
		return 0, 0, fmt.Errorf("%s: shape %s: empty set: no rows", a.where(), a.shapeString())
	case n == 0:
		return 0, 0, fmt.Errorf("%s: shape %s: rows have no features", a.where(), a.shapeString())
	}
	return rows, n, nil
}

// labelRows returns the rows of a labels array: shape (rows,) or (rows, 1)
// of an integer (or bool) dtype.
func (a *array) labelRows() (int, error) {
	if a.dt.kind == 'f' {
		return 0, fmt.Errorf("%s: labels of dtype %s: want integers (save y.astype(np.int64))", a.where(), a.dt)
	}
	if len(a.shape) == 1 || (len(a.shape) == 2 && a.shape[1] == 1) {
		return a.shape[0], nil
	}
	return 0, fmt.Errorf("%s: labels of shape %s: want (rows,) or (rows, 1)", a.where(), a.shapeString())
}

// readAt reads len(b) bytes at off, saying so when the file shrank since
// its size was checked.
func (a *array) readAt(b []byte, off int64) error {
	if _, err := a.f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: truncated while reading (the file changed?)", a.where())
		}
		return fmt.Errorf("%s: %w", a.where(), err)
	}
	return nil
}

// parallelBytes is the size from which an array is read by several
// goroutines: copying into fresh memory costs page faults that one core
// cannot keep up with, and a file in the page cache has no disk to wait for.
var parallelBytes int64 = 64 << 20

// readFeatures reads the array, n features per row, into dst (count
// values), checking every value as it goes: NaN, ±Inf and float64 values
// beyond float32's range are errors naming the row and column (the first
// such value in the file). Float32 data of the host's byte order are read
// straight into dst; other types are converted through a bounded buffer per
// reader, so the file is never held twice. When a.mapped, dst is the file's
// mapping (see mapFeatures) and is only checked. Large arrays are read in
// contiguous parts by up to 4 goroutines. progress, when not nil, gets the
// bytes read so far.
func (a *array) readFeatures(dst []float32, n int, progress func(int64)) error {
	dst = dst[:a.count]
	if len(dst) == 0 {
		return nil
	}
	workers := 1
	if a.size() >= parallelBytes {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	// Parts of whole pages of the destination, so that no two goroutines
	// fault in the same page.
	per := (len(dst)/workers + 1023) &^ 1023
	var (
		done   atomic.Int64
		failed atomic.Int32 // lowest part that failed; later parts may stop
		mu     sync.Mutex
		errs   = make([]error, workers)
		wg     sync.WaitGroup
	)
	failed.Store(int32(workers))
	tick := func(k int) {
		d := done.Add(int64(k))
		if progress != nil {
			mu.Lock()
			progress(d)
			mu.Unlock()
		}
	}
	for w := range workers {
		lo, hi := min(w*per, len(dst)), min((w+1)*per, len(dst))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.mapped {
				// A mapped file cut short under us faults instead of
				// returning EOF: make that an error, not a crash.
				defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
				defer func() {
					r := recover()
					if _, fault := r.(interface{ Addr() uintptr }); fault {
						errs[w] = fmt.Errorf("%s: truncated while reading (the file changed?)", a.where())
					} else if r != nil {
						panic(r)
					}
				}()
			}
			stop := func() bool { return failed.Load() < int32(w) }
			if errs[w] = a.readRange(dst, lo, hi, n, stop, tick); errs[w] != nil {
				for f := failed.Load(); int32(w) < f && !failed.CompareAndSwap(f, int32(w)); f = failed.Load() {
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// errStopped ends a part whose result no longer matters: an earlier part
// failed.
var errStopped = fmt.Errorf("stopped")

// readRange reads and checks elements [lo, hi) into dst[lo:hi].
func (a *array) readRange(dst []float32, lo, hi, n int, stop func() bool, tick func(int)) error {
	if a.dt.kind == 'f' && a.dt.size == 4 && a.dt.big != littleHost {
		raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst[lo:hi]))), 4*(hi-lo))
		if !a.mapped {
			prefault(raw)
		}
		for done := 0; done < len(raw); {
			if stop() {
				return errStopped
			}
			k := min(chunkBytes, len(raw)-done)
			if !a.mapped { // mapped, the values are there: checking them faults them in
				if err := a.readAt(raw[done:done+k], a.off+4*int64(lo)+int64(done)); err != nil {
					return err
				}
			}
			first := lo + done/4
			if err := a.checkFinite(dst[first:first+k/4], first, n); err != nil {
				return err
			}
			done += k
			tick(k)
		}
		return nil
	}
	sz := a.dt.size
	buf := make([]byte, chunkBytes/sz*sz)
	for first := lo; first < hi; {
		if stop() {
			return errStopped
		}
		m := min(len(buf)/sz, hi-first)
		b := buf[:m*sz]
		if err := a.readAt(b, a.off+int64(first)*int64(sz)); err != nil {
			return err
		}
		if err := a.convert(dst[first:first+m], b, first, n); err != nil {
			return err
		}
		first += m
		tick(len(b))
	}
	return nil
}

// checkFinite reports the first NaN or ±Inf in v, which holds the values
// from index first on. It runs at memory speed: see anyNonFinite.
func (a *array) checkFinite(v []float32, first, n int) error {
	if !anyNonFinite(v) {
		return nil
	}
	for i, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			j := first + i
			return fmt.Errorf("%s: row %d, column %d: feature is %v", a.where(), j/n, j%n, x)
		}
	}
	return nil
}

// anyNonFinite reports whether v holds a NaN or ±Inf, two values per 64-bit
// word and without a branch per value: a float32 is not finite when its
// exponent bits are all ones, and then adding one to the exponent carries
// into the sign bit.
func anyNonFinite(v []float32) bool {
	words := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(v))), len(v)/2)
	const exp, one, carry = 0x7f8000007f800000, 0x0080000000800000, 0x8000000080000000
	var acc0, acc1, acc2, acc3 uint64
	i := 0
	for ; i+4 <= len(words); i += 4 {
		acc0 |= words[i]&exp + one
		acc1 |= words[i+1]&exp + one
		acc2 |= words[i+2]&exp + one
		acc3 |= words[i+3]&exp + one
	}
	for ; i < len(words); i++ {
		acc0 |= words[i]&exp + one
	}
	if len(v)%2 == 1 {
		acc0 |= uint64(math.Float32bits(v[len(v)-1])&0x7f800000 + 0x00800000)
	}
	return (acc0|acc1|acc2|acc3)&carry != 0
}

// convert decodes the elements in b into out (float32), checking each.
func (a *array) convert(out []float32, b []byte, first, n int) error {
	dt, order := a.dt, a.dt.order()
	bad := func(i int, v any, why string) error {
		j := first + i
		return fmt.Errorf("%s: row %d, column %d: feature %v %s", a.where(), j/n, j%n, v, why)
	}
	switch {
	case dt.kind == 'f' && dt.size == 8:
		for i := range out {
			v := math.Float64frombits(order.Uint64(b[8*i:]))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return bad(i, v, "is not finite")
			}
			if math.Abs(v) > math.MaxFloat32 {
				return bad(i, v, "is out of float32 range")
			}
			out[i] = float32(v)
		}
	case dt.kind == 'f' && dt.size == 4: // the other byte order
		for i := range out {
			v := math.Float32frombits(order.Uint32(b[4*i:]))
			if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
				return bad(i, v, "is not finite")
			}
			out[i] = v
		}
	default: // integers: exact up to 2^24, rounded to nearest float32 above
		for i := range out {
			v, ok := dt.intAt(b[dt.size*i:], order)
			if !ok {
				return bad(i, order.Uint64(b[dt.size*i:]), "is out of range")
			}
			out[i] = float32(v)
		}
	}
	return nil
}

func (d dtype) order() binary.ByteOrder {
	if d.big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// intAt decodes one integer (or bool) element; ok is false for a uint64
// above math.MaxInt64.
func (d dtype) intAt(b []byte, order binary.ByteOrder) (int64, bool) {
	switch {
	case d.size == 1 && d.kind == 'i':
		return int64(int8(b[0])), true
	case d.size == 1:
		return int64(b[0]), true
	case d.size == 2 && d.kind == 'i':
		return int64(int16(order.Uint16(b))), true
	case d.size == 2:
		return int64(order.Uint16(b)), true
	case d.size == 4 && d.kind == 'i':
		return int64(int32(order.Uint32(b))), true
	case d.size == 4:
		return int64(order.Uint32(b)), true
	case d.kind == 'i':
		return int64(order.Uint64(b)), true
	}
	u := order.Uint64(b)
	return int64(u), u <= math.MaxInt64
}

// readLabels reads an integer labels array into dst (one per row) and
// returns the largest label. Every label must be in [0, 2^31) and, when
// classes > 0, below classes; errors name the row.
func (a *array) readLabels(dst []int32, classes int, progress func(int64)) (maxLabel int32, err error) {
	sz, order := a.dt.size, a.dt.order()
	buf := make([]byte, chunkBytes/sz*sz)
	total := a.size()
	maxLabel = -1
	for done := int64(0); done < total; {
		k := min(int64(len(buf)), total-done)
		b := buf[:k]
		if err := a.readAt(b, a.off+done); err != nil {
			return 0, err
		}
		first := int(done) / sz
		for i := 0; i < len(b)/sz; i++ {
			v, ok := a.dt.intAt(b[sz*i:], order)
			row := first + i
			switch {
			case !ok || v > math.MaxInt32:
				return 0, fmt.Errorf("%s: row %d: label %d is too large", a.where(), row, uint64(v))
			case v < 0:
				return 0, fmt.Errorf("%s: row %d: negative label %d", a.where(), row, v)
			case classes > 0 && v >= int64(classes):
				return 0, fmt.Errorf("%s: row %d: label %d out of range [0, %d)", a.where(), row, v, classes)
			}
			dst[row] = int32(v)
			maxLabel = max(maxLabel, int32(v))
		}
		done += k
		if progress != nil {
			progress(done)
		}
	}
	return maxLabel, nil
}
