//go:build gpu && cgo

package nccl

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char internal[128]; } dsxNcclUniqueId; // ncclUniqueId (NCCL_UNIQUE_ID_BYTES 128)
typedef int dsxNcclResult;                                // ncclResult_t
typedef void *dsxNcclComm;                                // ncclComm_t

static dsxNcclResult (*pGetVersion)(int *);
static dsxNcclResult (*pGetUniqueId)(dsxNcclUniqueId *);
static dsxNcclResult (*pCommInitRank)(dsxNcclComm *, int, dsxNcclUniqueId, int);
static dsxNcclResult (*pAllReduce)(const void *, void *, size_t, int, int, dsxNcclComm, void *);
static dsxNcclResult (*pCommDestroy)(dsxNcclComm);
static dsxNcclResult (*pCommAbort)(dsxNcclComm);
static const char *(*pGetErrorString)(dsxNcclResult);

// dsx_nccl_open loads the library and its entry points; NULL, or what failed.
static const char *dsx_nccl_open(const char *name) {
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!h) return dlerror();
#define SYM(p, s) if (!(*(void **)&p = dlsym(h, s))) return "no symbol " s;
	SYM(pGetVersion, "ncclGetVersion")
	SYM(pGetUniqueId, "ncclGetUniqueId")
	SYM(pCommInitRank, "ncclCommInitRank")
	SYM(pAllReduce, "ncclAllReduce")
	SYM(pCommDestroy, "ncclCommDestroy")
	SYM(pCommAbort, "ncclCommAbort")
	SYM(pGetErrorString, "ncclGetErrorString")
#undef SYM
	return NULL;
}
static int dsx_nccl_version(int *v) { return pGetVersion(v); }
static int dsx_nccl_unique_id(void *id) { return pGetUniqueId((dsxNcclUniqueId *)id); }
static int dsx_nccl_init_rank(dsxNcclComm *c, int nranks, const void *id, int rank) {
	dsxNcclUniqueId u;
	memcpy(&u, id, sizeof u);
	return pCommInitRank(c, nranks, u, rank);
}
// buf and stream are device-side handles passed as integers.
static int dsx_nccl_all_reduce(uintptr_t buf, size_t n, int dtype, dsxNcclComm c, uintptr_t stream) {
	return pAllReduce((void *)buf, (void *)buf, n, dtype, 0, c, (void *)stream); // ncclSum, in place
}
static int dsx_nccl_destroy(dsxNcclComm c) { return pCommDestroy(c); }
static int dsx_nccl_abort(dsxNcclComm c) { return pCommAbort(c); }
static const char *dsx_nccl_error(int rc) { return pGetErrorString(rc); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"dsx/dist"
)

// EnvLib names the library to load (default libnccl.so.2).
const EnvLib = "DSX_NCCL_LIB"

// ncclFloat32 and ncclFloat64: ncclDataType_t (nccl.h).
const (
	ncclFloat32 = 7
	ncclFloat64 = 8
)

// IDBytes is NCCL_UNIQUE_ID_BYTES.
const IDBytes = 128

var (
	once    sync.Once
	version string
	loadErr error
)

// Load loads NCCL once per process and returns its version ("2.19.3"), or
// why it cannot.
func Load() (string, error) {
	once.Do(func() {
		name := os.Getenv(EnvLib)
		if name == "" {
			name = "libnccl.so.2"
		}
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		if msg := C.dsx_nccl_open(cs); msg != nil {
			loadErr = fmt.Errorf("nccl: %s: %s", name, C.GoString(msg))
			return
		}
		var v C.int
		if rc := C.dsx_nccl_version(&v); rc != 0 {
			loadErr = fmt.Errorf("nccl: ncclGetVersion: %s", errString(rc))
			return
		}
		version = versionString(int(v))
	})
	return version, loadErr
}

// versionString decodes NCCL_VERSION_CODE: X·1000 + Y·100 + Z up to 2.8,
// X·10000 + Y·100 + Z from 2.9 on.
func versionString(v int) string {
	if v < 10000 {
		return fmt.Sprintf("%d.%d.%d", v/1000, v/100%10, v%100)
	}
	return fmt.Sprintf("%d.%d.%d", v/10000, v/100%100, v%100)
}

func errString(rc C.int) string {
	return fmt.Sprintf("%s (ncclResult_t %d)", C.GoString(C.dsx_nccl_error(rc)), int(rc))
}

// UniqueID is an id made by rank 0 of world (ncclGetUniqueId) and
// broadcast to every rank over world. Every rank calls it.
func UniqueID(world dist.Comm) ([IDBytes]byte, error) {
	var id [IDBytes]byte
	if _, err := Load(); err != nil {
		return id, err
	}
	failed := false
	if world.Rank() == 0 {
		if rc := C.dsx_nccl_unique_id(unsafe.Pointer(&id[0])); rc != 0 {
			failed = true
		}
	}
	if err := dist.Failed(world, failed); err != nil {
		return id, fmt.Errorf("nccl: ncclGetUniqueId on rank 0: %w", err)
	}
	if err := world.Broadcast(id[:], 0); err != nil {
		return id, fmt.Errorf("nccl: broadcasting the unique id: %w", err)
	}
	return id, nil
}

// Comm is one rank's NCCL communicator.
type Comm struct {
	c           C.dsxNcclComm
	rank, ranks int
}

// InitRank joins the communicator of nranks ranks with id as rank. The GPU
// the rank uses must be current on the calling thread (NCCL takes the
// current device); ncclCommInitRank waits for every rank.
func InitRank(id [IDBytes]byte, nranks, rank int) (*Comm, error) {
	if _, err := Load(); err != nil {
		return nil, err
	}
	c := &Comm{rank: rank, ranks: nranks}
	if rc := C.dsx_nccl_init_rank(&c.c, C.int(nranks), unsafe.Pointer(&id[0]), C.int(rank)); rc != 0 {
		return nil, fmt.Errorf("nccl: ncclCommInitRank (rank %d of %d): %s", rank, nranks, errString(rc))
	}
	return c, nil
}

// AllReduce replaces the n elements at the device address p (float32 when
// f32, else float64) by their sum over the ranks, in place, queued on
// stream (0: the default stream) after the work already there.
func (c *Comm) AllReduce(p uintptr, n int, f32 bool, stream uintptr) error {
	dt := C.int(ncclFloat64)
	if f32 {
		dt = ncclFloat32
	}
	if rc := C.dsx_nccl_all_reduce(C.uintptr_t(p), C.size_t(n), dt, c.c, C.uintptr_t(stream)); rc != 0 {
		return fmt.Errorf("nccl: ncclAllReduce of %d elements: %s", n, errString(rc))
	}
	return nil
}

// Close frees the communicator (ncclCommDestroy).
func (c *Comm) Close() error {
	if c.c == nil {
		return nil
	}
	rc := C.dsx_nccl_destroy(c.c)
	c.c = nil
	if rc != 0 {
		return fmt.Errorf("nccl: ncclCommDestroy: %s", errString(rc))
	}
	return nil
}

// Abort ends the communicator's work on the device (ncclCommAbort): for
// errors.
func (c *Comm) Abort() {
	if c.c != nil {
		C.dsx_nccl_abort(c.c)
		c.c = nil
	}
}
