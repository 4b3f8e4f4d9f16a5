package hostkern

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	"dsx/backend/cuda/lower"
	k "dsx/cudakernels"
)

// Span is the address space each buffer of an Arena gets: buffer i lives
// in [(i+1)·Span, (i+2)·Span). MaxBuffers keeps every address below 2³⁹,
// where ThreadSanitizer lets a program map memory.
const (
	Span       = 1 << 32
	MaxBuffers = 126
)

// Arena is the device memory of one emulated layer: its buffers in one
// shared memory file, mapped here and, in the harness that runs the host
// kernels, at their device addresses, each ending (to 16 bytes) at the end
// of its pages, beyond which nothing is mapped: a kernel that reads or
// writes past a buffer faults, and the harness says which buffer and byte.
type Arena struct {
	mem  []byte
	file *os.File
	bufs []region
	mu   sync.Mutex
	proc *proc
	dead error
	// noHost says why the harness cannot share this arena's memory (nil
	// when it can).
	noHost error
}

type region struct {
	off, maplen int64 // in the file
	pad, bytes  int64 // the buffer is bytes at off+pad
}

// NewArena makes buffers of the given sizes, filled with 0xff bytes (NaN:
// fresh device memory is garbage). An arena the harness cannot map (more
// than MaxBuffers buffers, one over Span, no shared memory on this system)
// is host memory all the same: HostErr says why, and Launch fails.
func NewArena(sizes []int64) (*Arena, error) {
	page := int64(os.Getpagesize())
	a := &Arena{bufs: make([]region, len(sizes))}
	if len(sizes) > MaxBuffers {
		a.noHost = fmt.Errorf("host kernels: %d buffers; the harness maps at most %d", len(sizes), MaxBuffers)
	}
	total := int64(0)
	for i, n := range sizes {
		if n < 0 || n > 1<<50 {
			return nil, fmt.Errorf("host kernels: a buffer of %d bytes", n)
		}
		if n > Span-page && a.noHost == nil {
			a.noHost = fmt.Errorf("host kernels: a buffer of %d bytes; the harness maps at most %d", n, Span-page)
		}
		ml := max(page, (n+page-1)/page*page)
		a.bufs[i] = region{off: total, maplen: ml, pad: (ml - n) &^ 15, bytes: n}
		total += ml
	}
	mem, file, err := mapShared(max(total, page))
	if err != nil {
		if a.noHost == nil {
			a.noHost = fmt.Errorf("host kernels: %w", err)
		}
		mem = make([]byte, max(total, page))
	}
	a.mem, a.file = mem, file
	for i := range mem {
		mem[i] = 0xff
	}
	return a, nil
}

// HostErr is nil when the harness can run kernels on the arena, else why
// not (its size, or this system).
func (a *Arena) HostErr() error { return a.noHost }

// Buf is buffer i's bytes.
func (a *Arena) Buf(i int) []byte {
	r := a.bufs[i]
	return a.mem[r.off+r.pad : r.off+r.pad+r.bytes : r.off+r.pad+r.bytes]
}

// Addr is buffer i's device address.
func (a *Arena) Addr(i int) k.Ptr {
	return k.Ptr(uint64(i+1)*Span + uint64(a.bufs[i].pad))
}

// Locate finds the buffer that holds bytes [p, p+n): its index and the
// offset of p in it, or an error that says how they miss.
func (a *Arena) Locate(p k.Ptr, n int64) (int, int64, error) {
	id := int64(p/Span) - 1
	if p == 0 || a.mem == nil || id < 0 || id >= int64(len(a.bufs)) {
		return 0, 0, fmt.Errorf("address %#x is not in a buffer", uint64(p))
	}
	r := a.bufs[id]
	off := int64(p%Span) - r.pad
	if off < 0 || n < 0 || off+n > r.bytes {
		return 0, 0, fmt.Errorf("bytes [%d, %d) of a %d-byte buffer", off, off+n, r.bytes)
	}
	return int(id), off, nil
}

// Close stops the harness and unmaps the buffers; it is safe to call twice.
func (a *Arena) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		a.proc.stop()
		a.proc = nil
	}
	if a.mem == nil {
		return nil
	}
	var err error
	if a.file != nil {
		err = unmap(a.mem, a.file)
	}
	a.mem, a.file = nil, nil
	return err
}

// Words is a kernel's argument struct (a pointer to one of package
// cudakernels' structs: every field 8 bytes) as the words the harness
// passes, field by field.
func Words(args any) ([]uint64, error) {
	v := reflect.ValueOf(args)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("host kernels: arguments %T are not a pointer to a struct", args)
	}
	st := v.Elem().Type()
	for i := 0; i < st.NumField(); i++ {
		if st.Field(i).Type.Size() != 8 || st.Field(i).Offset != uintptr(8*i) {
			return nil, fmt.Errorf("host kernels: field %s of %v is not an 8-byte word", st.Field(i).Name, st)
		}
	}
	return unsafe.Slice((*uint64)(v.UnsafePointer()), st.NumField()), nil
}

// Reverse, from DSX_SHIM_ORDER=reverse, runs the threads of each block in
// reverse order between their waits (the default is thread order).
func Reverse() bool { return os.Getenv("DSX_SHIM_ORDER") == "reverse" }

// Launch runs kernel name, compiled for the host, on the arena's buffers
// with the launch geometry d and the argument struct args. The first launch
// starts the harness (and builds it if no process has: Build). A fault, a
// race under ThreadSanitizer or any death of the harness fails this launch
// and every later one of the arena.
func (a *Arena) Launch(name string, d lower.Dims, args any, reverse bool) error {
	w, err := Words(args)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dead != nil {
		return a.dead
	}
	if a.noHost != nil {
		return a.noHost
	}
	if a.proc == nil {
		if a.mem == nil {
			return fmt.Errorf("host kernels: launch of %s on a closed arena", name)
		}
		if a.proc, err = a.start(); err != nil {
			a.dead = err
			return err
		}
	}
	var req bytes.Buffer
	put := func(v ...any) {
		for _, x := range v {
			binary.Write(&req, binary.LittleEndian, x)
		}
	}
	flags := uint32(0)
	if reverse {
		flags = 1
	}
	put(uint32(2), uint32(len(name)))
	req.WriteString(name)
	put(uint32(d.GridX), uint32(d.GridY), uint32(d.BlockX), uint32(d.BlockY), uint64(d.Shmem), uint32(len(w)), w, flags)
	if err := a.proc.call(req.Bytes()); err != nil {
		if _, died := err.(*deathError); died {
			a.dead, a.proc = err, nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// start starts the harness and maps the buffers in it.
func (a *Arena) start() (*proc, error) {
	exe, err := Build()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: exec.Command(exe)}
	p.cmd.ExtraFiles = []*os.File{a.file}
	p.cmd.Stderr = &p.stderr
	p.cmd.Env = append(os.Environ(), "TSAN_OPTIONS=halt_on_error=1:exitcode=66:report_signal_unsafe=0:"+os.Getenv("TSAN_OPTIONS"))
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if p.out, err = p.cmd.StdoutPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("host kernels: %w", err)
	}
	var req bytes.Buffer
	binary.Write(&req, binary.LittleEndian, []uint32{1, uint32(len(a.bufs))})
	for i, r := range a.bufs {
		binary.Write(&req, binary.LittleEndian, []uint64{uint64(i+1) * Span, uint64(r.off), uint64(r.maplen), uint64(a.Addr(i)), uint64(r.bytes)})
	}
	if err := p.call(req.Bytes()); err != nil {
		p.stop()
		return nil, fmt.Errorf("mapping the buffers: %w", err)
	}
	return p, nil
}

// proc is a running harness.
type proc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	stderr lockedBuffer
}

// deathError is the harness's death, with what it printed.
type deathError struct{ msg string }

func (e *deathError) Error() string { return e.msg }

func (p *proc) call(req []byte) error {
	if _, err := p.in.Write(req); err != nil {
		return p.died()
	}
	var h [2]uint32
	if err := binary.Read(p.out, binary.LittleEndian, &h); err != nil {
		return p.died()
	}
	msg := make([]byte, h[1])
	if _, err := io.ReadFull(p.out, msg); err != nil {
		return p.died()
	}
	if h[0] != 0 {
		return fmt.Errorf("host kernels: %s", msg)
	}
	return nil
}

// died waits for the harness and says how it ended.
func (p *proc) died() error {
	p.in.Close()
	err := p.cmd.Wait()
	s := strings.TrimSpace(p.stderr.String())
	const most = 6000
	if len(s) > most {
		s = s[:most] + "\n…"
	}
	how := "the harness died"
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 66 {
		how = "ThreadSanitizer stopped the harness"
	}
	return &deathError{fmt.Sprintf("host kernels: %s (%v):\n%s", how, err, s)}
}

func (p *proc) stop() {
	binary.Write(p.in, binary.LittleEndian, uint32(3))
	p.in.Close()
	p.cmd.Wait()
}

// lockedBuffer is the harness's stderr, written by exec's copier.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
