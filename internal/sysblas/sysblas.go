package sysblas

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// EnvBLAS chooses the library: "" or "auto" (default search), "off", or a path.
const EnvBLAS = "DSX_BLAS"

// EnvThreads sets the threads one BLAS call may use (see Info.Threads).
const EnvThreads = "DSX_BLAS_THREADS"

// Info says which BLAS was loaded, from where, and how it is threaded, or
// why none was.
type Info struct {
	Loaded bool   `json:"loaded"`
	Name   string `json:"name"`             // "OpenBLAS 0.3.21", "Accelerate", or the file name
	Path   string `json:"path,omitempty"`   // the file the library was loaded from
	Config string `json:"config,omitempty"` // the library's own build description, when it has one
	Core   string `json:"core,omitempty"`   // the kernels OpenBLAS picked for this CPU
	// Threads is the threads one call may use where the library has a
	// setting dsx knows (OpenBLAS): DSX_BLAS_THREADS, 1 by default (callers
	// then split a product over their own workers); 0 where it has none and
	// threads itself as it likes (Accelerate).
	Threads int    `json:"threads"`
	Reason  string `json:"reason,omitempty"`  // why none was loaded
	Warning string `json:"warning,omitempty"` // something that makes it slower than it could be
	// Generic: OpenBLAS runs its generic SSE kernels on a CPU that has AVX2
	// and FMA (the Warning says how to pick faster ones), so that callers
	// may prefer kernels of their own.
	Generic bool `json:"generic,omitempty"`
	// Install is the command (or step) that installs the platform's usual
	// BLAS, when the default search found none.
	Install string `json:"install,omitempty"`
}

// Lib is a loaded BLAS.
type Lib struct {
	info         Info
	sgemm, dgemm uintptr
}

var (
	once   sync.Once
	loaded *Lib
	info   Info
)

// Load opens the BLAS that DSX_BLAS chooses, once per process, and returns
// it (nil when none loaded) with what Info says about it.
func Load() (*Lib, Info) {
	once.Do(func() { loaded, info = load(os.Getenv(EnvBLAS), os.Getenv(EnvThreads)) })
	return loaded, info
}

func load(choice, threads string) (*Lib, Info) {
	want := 1
	if threads != "" {
		n, err := strconv.Atoi(threads)
		if err != nil || n < 1 {
			return nil, Info{Name: "none", Reason: fmt.Sprintf("%s=%q: want a number of threads ≥ 1", EnvThreads, threads)}
		}
		want = n
	}
	var candidates []string
	switch c := strings.TrimSpace(choice); {
	case c == "off":
		return nil, Info{Name: "none", Reason: EnvBLAS + "=off"}
	case nosysblas:
		return nil, Info{Name: "none", Reason: "built with -tags nosysblas (a static binary that loads no library)"}
	case c == "" || c == "auto":
		candidates = defaultNames
		if len(candidates) == 0 {
			return nil, Info{Name: "none", Reason: fmt.Sprintf("no default BLAS on %s/%s (set %s=PATH)", runtime.GOOS, runtime.GOARCH, EnvBLAS)}
		}
	default:
		candidates = []string{c}
	}
	var why []string
	for _, name := range candidates {
		l, err := open(name, want)
		if err == nil {
			return l, l.info
		}
		why = append(why, err.Error())
	}
	reason := strings.Join(why, "; ")
	in := Info{Name: "none"}
	if choice == "" || choice == "auto" {
		reason += " (" + installHint + ", or set " + EnvBLAS + "=PATH)"
		in.Install = installCommand()
	} else {
		reason = EnvBLAS + "=" + choice + ": " + reason
	}
	in.Reason = reason
	return nil, in
}

// Info returns what Load said.
func (l *Lib) Info() Info { return l.info }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float32
// matrices (C is m×n, op(A) m×k, op(B) k×n), as gonum's blas.Float32
// Sgemm, including its argument checks: it panics where gonum panics, so
// that a short slice is a Go panic and never a read outside it in C.
func (l *Lib) Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(l.sgemm, &args32, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm is Sgemm in float64.
func (l *Lib) Dgemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemm(l.dgemm, &args64, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemm[F float32 | float64](fn uintptr, pool *sync.Pool, tA, tB bool, m, n, k int, alpha F, a []F, lda int, b []F, ldb int, beta F, c []F, ldc int) {
	check(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	p := pool.Get().(*gemmArgs[F])
	p.set(tA, tB, m, n, k, lda, ldb, ldc)
	p.alpha, p.beta = alpha, beta
	call(fn, p, unsafe.Pointer(unsafe.SliceData(a)), unsafe.Pointer(unsafe.SliceData(b)), unsafe.Pointer(unsafe.SliceData(c)))
	pool.Put(p)
}

// gemmArgs is the memory the Fortran call's by-pointer arguments point
// to, already in the column-major order of the call: row-major C = A·B is
// column-major Cᵀ = Bᵀ·Aᵀ, so B comes first and m and n swap.
type gemmArgs[F float32 | float64] struct {
	ta, tb        byte // 'N' or 'T' for the first (B) and second (A) operand
	m, n, k       int32
	lda, ldb, ldc int32 // lda is B's, ldb A's
	alpha, beta   F
	a, b, c       unsafe.Pointer // the operands during a call
	argv          [15]uintptr    // the call's argument list
}

var (
	args32 = sync.Pool{New: func() any { return new(gemmArgs[float32]) }}
	args64 = sync.Pool{New: func() any { return new(gemmArgs[float64]) }}
)

func (p *gemmArgs[F]) set(tA, tB bool, m, n, k, lda, ldb, ldc int) {
	p.ta, p.tb = trans(tB), trans(tA)
	p.m, p.n, p.k = int32(n), int32(m), int32(k)
	p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
}

// call runs sgemm_ or dgemm_ on the arguments in p (see gemmArgs); a, b and
// c are the first elements of the row-major A, B and C.
//
// The argument list is built in p, a pooled heap object, rather than as
// the variadic arguments of the platform's syscallN, which escape and so
// would allocate on every call. p holds a, b and c as pointers too: that
// makes them heap objects (Go's heap does not move) and keeps them alive
// through the call.
func call[F float32 | float64](fn uintptr, p *gemmArgs[F], a, b, c unsafe.Pointer) {
	p.a, p.b, p.c = a, b, c
	// Fortran order: transa, transb, m, n, k, alpha, A, lda, B, ldb, beta,
	// C, ldc, then the hidden lengths of the two character arguments.
	p.argv = [15]uintptr{
		uintptr(unsafe.Pointer(&p.ta)), uintptr(unsafe.Pointer(&p.tb)),
		uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)), uintptr(p.b), uintptr(unsafe.Pointer(&p.lda)),
		uintptr(p.a), uintptr(unsafe.Pointer(&p.ldb)),
		uintptr(unsafe.Pointer(&p.beta)), uintptr(p.c), uintptr(unsafe.Pointer(&p.ldc)),
		1, 1,
	}
	syscallN(fn, p.argv[:])
	runtime.KeepAlive(p)
	p.a, p.b, p.c = nil, nil, nil
}

func trans(t bool) byte {
	if t {
		return 'T'
	}
	return 'N'
}

// Fits reports whether a product's sizes fit the 32-bit integers of the
// LP64 BLAS interface.
func Fits(m, n, k, lda, ldb, ldc int) bool {
	for _, v := range [...]int{m, n, k, lda, ldb, ldc} {
		if v > math.MaxInt32 {
			return false
		}
	}
	return true
}

// check panics as gonum's Sgemm does on bad arguments, and on sizes that
// do not fit 32-bit BLAS integers.
func check(tA, tB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	switch {
	case m < 0:
		panic("blas: m < 0")
	case n < 0:
		panic("blas: n < 0")
	case k < 0:
		panic("blas: k < 0")
	case !Fits(m, n, k, lda, ldb, ldc):
		panic("sysblas: size does not fit a 32-bit BLAS integer")
	}
	rowA, colA, rowB, colB := m, k, k, n
	if tA {
		rowA, colA = k, m
	}
	if tB {
		rowB, colB = n, k
	}
	switch {
	case lda < max(1, colA):
		panic("blas: bad leading dimension of A")
	case ldb < max(1, colB):
		panic("blas: bad leading dimension of B")
	case ldc < max(1, n):
		panic("blas: bad leading dimension of C")
	}
	if m == 0 || n == 0 {
		return
	}
	switch {
	case la < lda*(rowA-1)+colA:
		panic("blas: insufficient length of a")
	case lb < ldb*(rowB-1)+colB:
		panic("blas: insufficient length of b")
	case lc < ldc*(m-1)+n:
		panic("blas: insufficient length of c")
	}
}
