package dist

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// EnvMPILib names the MPI library to load (a file name the dynamic loader
// resolves, or a path); unset, the libraries of the launcher's family are
// tried first (mpiLibs).
const EnvMPILib = "DSX_MPI_LIB"

// mpiLibs are the run-time libraries of each family by the names the
// dynamic loader resolves: Debian's libopenmpi3 (libmpi.so.40), libmpich12
// (libmpich.so.12; libmpi.so.12 on other distributions and in Intel MPI),
// and the unversioned names of a -dev package or a module system.
var mpiLibs = map[string][]string{
	"Open MPI": {"libmpi.so.40"},
	"MPICH":    {"libmpich.so.12", "libmpi.so.12"},
	"":         {"libmpi.so", "libmpich.so"},
}

// mpiCandidates lists the libraries to try for a launcher of family: that
// family's first, then the others, then the unversioned names.
func mpiCandidates(family, choice string) []string {
	if choice != "" {
		return []string{choice}
	}
	out := append([]string(nil), mpiLibs[family]...)
	for _, f := range []string{"Open MPI", "MPICH"} {
		if f != family {
			out = append(out, mpiLibs[f]...)
		}
	}
	return append(out, mpiLibs[""]...)
}

// mpiFns are the entry points dsx calls, all of the MPI standard.
type mpiFns struct {
	initialized, initThread, commRank, commSize, splitType, commFree  uintptr
	allreduce, bcast, barrier, abort, finalize, libVersion, errString uintptr
}

// MPI is a Comm over an MPI library loaded at run time. All its calls run
// on one locked OS thread, the one that initialised MPI
// (MPI_THREAD_FUNNELED), whichever goroutine makes them. MPI's default
// error handler stays in place: an error in a collective (a lost rank)
// aborts the whole job, which the launcher then reports naming the rank.
type MPI struct {
	abi
	fn                   mpiFns
	lib, version         string
	rank, size           int
	localRank, localSize int

	calls  chan func()
	mu     sync.RWMutex // held (read) while a call is on its way, so that Close cannot close calls under it
	closed atomic.Bool
}

// maxCount is the most elements one MPI call moves (its count is a C int).
const maxCount = 1 << 30

// JoinMPI loads the MPI library (choice, or the launcher's family's) and
// joins the job that launcher l started. The rank and size MPI reports must
// be the launcher's: a library of another family than the launcher's starts
// alone and says size 1, which is an error naming both.
func JoinMPI(l Launcher, choice string) (*MPI, error) {
	m, err := loadMPI(l.Family, choice)
	if err != nil {
		return nil, fmt.Errorf("dist: %s, but %w", l, err)
	}
	if err := m.start(); err != nil {
		return nil, fmt.Errorf("dist: %s: %s (%s): %w", l, m.family, m.lib, err)
	}
	if m.rank != l.Rank || m.size != l.Size {
		m.Close()
		return nil, fmt.Errorf("dist: %s, but %s (%s) sees rank %d of %d: the library is not of the launcher's MPI (set %s to the library that came with %s)",
			l, m.family, m.lib, m.rank, m.size, EnvMPILib, l.Name)
	}
	return m, nil
}

// loadMPI loads the first MPI library of mpiCandidates that loads and has
// the entry points, without initialising it.
func loadMPI(family, choice string) (*MPI, error) {
	if !canLoad {
		return nil, errNoLoad
	}
	var why []string
	for _, name := range mpiCandidates(family, choice) {
		h, err := dlopen(name)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		a, err := abiOf(h)
		if err != nil {
			why = append(why, name+": "+err.Error())
			continue
		}
		m := &MPI{abi: a, lib: name}
		if err := m.bind(h); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return m, nil
	}
	hint := "install Open MPI's run-time library (Debian: libopenmpi3, which openmpi-bin brings) or MPICH's (libmpich12), or set " + EnvMPILib + " to the library"
	return nil, fmt.Errorf("no MPI library loads (%s): %s", strings.Join(why, "; "), hint)
}

// FindMPI says which MPI library a process started by a launcher would
// load (choice: DSX_MPI_LIB, or "" for the default search), by its own
// version line ("Open MPI v4.1.4 (libmpi.so.40)"), without initialising
// it (MPI_Get_library_version may be called before MPI_Init); or why
// none loads.
func FindMPI(choice string) (string, error) {
	m, err := loadMPI("", choice)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 8192)
	var n int32
	ccall(m.fn.libVersion, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
	return fmt.Sprintf("%s (%s)", versionLine(string(buf[:max(0, min(int(n), len(buf)))])), m.lib), nil
}

func (m *MPI) bind(h uintptr) error {
	for _, s := range []struct {
		name string
		into *uintptr
	}{
		{"MPI_Initialized", &m.fn.initialized}, {"MPI_Init_thread", &m.fn.initThread},
		{"MPI_Comm_rank", &m.fn.commRank}, {"MPI_Comm_size", &m.fn.commSize},
		{"MPI_Comm_split_type", &m.fn.splitType}, {"MPI_Comm_free", &m.fn.commFree},
		{"MPI_Allreduce", &m.fn.allreduce}, {"MPI_Bcast", &m.fn.bcast}, {"MPI_Barrier", &m.fn.barrier},
		{"MPI_Abort", &m.fn.abort}, {"MPI_Finalize", &m.fn.finalize},
		{"MPI_Get_library_version", &m.fn.libVersion}, {"MPI_Error_string", &m.fn.errString},
	} {
		if *s.into = dlsym(h, s.name); *s.into == 0 {
			return fmt.Errorf("no symbol %s (an MPI-3 library has it)", s.name)
		}
	}
	return nil
}

// start runs the funnel: a goroutine locked to its OS thread that
// initialises MPI and then makes every call.
func (m *MPI) start() error {
	m.calls = make(chan func())
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // for good: the thread belongs to MPI
		ready <- m.init()
		for f := range m.calls {
			f()
		}
	}()
	return <-ready
}

func (m *MPI) init() error {
	var flag int32
	ccall(m.fn.initialized, uintptr(unsafe.Pointer(&flag)))
	if flag != 0 {
		return errors.New("MPI is already initialised in this process")
	}
	var provided int32
	if rc := ccall(m.fn.initThread, 0, 0, m.threadFunneled, uintptr(unsafe.Pointer(&provided))); rc != 0 {
		return m.mpiErr("MPI_Init_thread", rc)
	}
	var r, s int32
	ccall(m.fn.commRank, m.world, uintptr(unsafe.Pointer(&r)))
	ccall(m.fn.commSize, m.world, uintptr(unsafe.Pointer(&s)))
	m.rank, m.size = int(r), int(s)
	// The ranks on this host: the communicator of those that share memory
	// with this one (MPI-3), whatever the launcher.
	var local uint64 // MPI_Comm: a pointer (Open MPI) or an int (MPICH)
	if rc := ccall(m.fn.splitType, m.world, m.commTypeShared, uintptr(r), m.infoNull, uintptr(unsafe.Pointer(&local))); rc != 0 {
		return m.mpiErr("MPI_Comm_split_type", rc)
	}
	ccall(m.fn.commRank, uintptr(local), uintptr(unsafe.Pointer(&r)))
	ccall(m.fn.commSize, uintptr(local), uintptr(unsafe.Pointer(&s)))
	m.localRank, m.localSize = int(r), int(s)
	ccall(m.fn.commFree, uintptr(unsafe.Pointer(&local)))
	buf := make([]byte, 8192) // ≥ MPI_MAX_LIBRARY_VERSION_STRING of both families
	var n int32
	ccall(m.fn.libVersion, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
	m.version = versionLine(string(buf[:max(0, min(int(n), len(buf)))]))
	return nil
}

// versionLine is the first line of MPI_Get_library_version's text, up to
// its first comma ("Open MPI v4.1.4"; MPICH's "MPICH Version: 4.0.2" as
// "MPICH 4.0.2").
func versionLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimRight(s, "\x00"), "\n")
	s, _, _ = strings.Cut(s, ",")
	s = strings.Join(strings.Fields(s), " ")
	return strings.Replace(s, "MPICH Version: ", "MPICH ", 1)
}

// mpiErr is an MPI return code as an error with MPI's text for it.
func (m *MPI) mpiErr(call string, rc int32) error {
	buf := make([]byte, 1024) // ≥ MPI_MAX_ERROR_STRING of both families
	var n int32
	ccall(m.fn.errString, uintptr(rc), uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)))
	return fmt.Errorf("%s: error %d: %s", call, rc, strings.TrimRight(string(buf[:max(0, min(int(n), len(buf)))]), "\x00"))
}

var errClosed = errors.New("dist: the communicator is closed")

// errNoLoad is why a build without run-time loading has no MPI.
var errNoLoad = func() error {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64":
		return errors.New("this dsx loads no library at run time (a static build: -tags nosysblas)")
	}
	return errors.New("this dsx loads no library at run time on " + runtime.GOOS + "/" + runtime.GOARCH)
}()

// do runs f on MPI's thread and waits for it.
func (m *MPI) do(f func() error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed.Load() {
		return errClosed
	}
	var err error
	done := make(chan struct{})
	m.calls <- func() { err = f(); close(done) }
	<-done
	return err
}

func (m *MPI) Rank() int      { return m.rank }
func (m *MPI) Size() int      { return m.size }
func (m *MPI) LocalRank() int { return m.localRank }
func (m *MPI) LocalSize() int { return m.localSize }

// Engine is "mpi: " and the library's own version line, with the file.
func (m *MPI) Engine() string { return fmt.Sprintf("mpi: %s (%s)", m.version, m.lib) }

func (m *MPI) AllReduceF32(buf []float32) error {
	return m.allReduce(unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 4, m.float)
}

func (m *MPI) AllReduceF64(buf []float64) error {
	return m.allReduce(unsafe.Pointer(unsafe.SliceData(buf)), len(buf), 8, m.double)
}

// allReduce sums n elements of size bytes at p in place, at most maxCount
// a call.
func (m *MPI) allReduce(p unsafe.Pointer, n, size int, dt uintptr) error {
	return m.do(func() error {
		for off := 0; off < n; off += maxCount {
			c := min(maxCount, n-off)
			if rc := ccall(m.fn.allreduce, m.inPlace, uintptr(unsafe.Add(p, off*size)), uintptr(c), dt, m.sum, m.world); rc != 0 {
				return m.mpiErr("MPI_Allreduce", rc)
			}
		}
		return nil
	})
}

func (m *MPI) Broadcast(buf []byte, root int) error {
	if root < 0 || root >= m.size {
		return fmt.Errorf("dist: broadcast from rank %d of %d", root, m.size)
	}
	return m.do(func() error {
		for off := 0; off < len(buf); off += maxCount {
			c := min(maxCount, len(buf)-off)
			if rc := ccall(m.fn.bcast, uintptr(unsafe.Pointer(&buf[off])), uintptr(c), m.byte, uintptr(root), m.world); rc != 0 {
				return m.mpiErr("MPI_Bcast", rc)
			}
		}
		return nil
	})
}

func (m *MPI) Barrier() error {
	return m.do(func() error {
		if rc := ccall(m.fn.barrier, m.world); rc != 0 {
			return m.mpiErr("MPI_Barrier", rc)
		}
		return nil
	})
}

// Abort calls MPI_Abort on MPI's thread; should that thread be stuck in a
// collective for more than a few seconds, it calls it from this one (both
// families handle that) rather than wait for ever.
func (m *MPI) Abort(code int) {
	call := func() { ccall(m.fn.abort, m.world, uintptr(code)) }
	if m.closed.Load() {
		return
	}
	defer func() { recover() }() // calls closed by a Close racing this Abort
	select {
	case m.calls <- call:
		time.Sleep(time.Minute) // MPI_Abort does not return
	case <-time.After(5 * time.Second):
		call()
	}
}

// Close finalises MPI (a collective: every rank calls it) and stops its
// thread; it is safe to call twice.
func (m *MPI) Close() error {
	err := m.do(func() error {
		if rc := ccall(m.fn.finalize); rc != 0 {
			return m.mpiErr("MPI_Finalize", rc)
		}
		return nil
	})
	if errors.Is(err, errClosed) {
		return nil
	}
	m.mu.Lock()
	if !m.closed.Swap(true) {
		close(m.calls)
	}
	m.mu.Unlock()
	return err
}
