package cudakernels

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// Resources is what ptxas makes of one entry for sm_90 (H100, H200): the
// registers a thread uses, the bytes it spills, the static shared memory of
// a block and the stack of a thread. gen.sh records them for every entry in
// resources.sm_90.txt when it regenerates the PTX.
type Resources struct {
	Registers               int
	SpillStores, SpillLoads int
	SharedBytes             int // static __shared__ of a block
	StackBytes              int
}

// Limits of an sm_90 multiprocessor that a launch must respect: registers
// of a block, and a block's shared memory without the opt-in attribute.
const (
	RegistersPerBlock = 65536
	SharedPerBlock    = 48 << 10
)

//go:embed resources.sm_90.txt
var resourcesTxt string

var resources struct {
	once sync.Once
	m    map[string]Resources
	err  error
}

// KernelResources returns ptxas's figures of every entry by name, from
// resources.sm_90.txt.
func KernelResources() (map[string]Resources, error) {
	resources.once.Do(func() {
		resources.m = map[string]Resources{}
		for i, line := range strings.Split(resourcesTxt, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if len(f) != 6 {
				resources.err = fmt.Errorf("cudakernels: resources.sm_90.txt line %d: %q", i+1, line)
				return
			}
			var v [5]int
			for j := range v {
				n, err := strconv.Atoi(f[j+1])
				if err != nil {
					resources.err = fmt.Errorf("cudakernels: resources.sm_90.txt line %d: %v", i+1, err)
					return
				}
				v[j] = n
			}
			resources.m[f[0]] = Resources{Registers: v[0], SpillStores: v[1], SpillLoads: v[2], SharedBytes: v[3], StackBytes: v[4]}
		}
	})
	return resources.m, resources.err
}

// CheckLaunch checks a launch of kernel name with blocks of threads threads
// and dynamic shared memory of dynShared bytes against its ptxas figures:
// registers × threads within RegistersPerBlock, static plus dynamic shared
// memory within SharedPerBlock, and threads within its .maxntid.
func CheckLaunch(name string, threads, dynShared int) error {
	rs, err := KernelResources()
	if err != nil {
		return err
	}
	r, ok := rs[name]
	if !ok {
		return fmt.Errorf("%s: no ptxas figures in resources.sm_90.txt: run `make kernels`", name)
	}
	if r.Registers*threads > RegistersPerBlock {
		return fmt.Errorf("%s: %d registers a thread × %d threads = %d, over the %d of a block on sm_90", name, r.Registers, threads, r.Registers*threads, RegistersPerBlock)
	}
	if r.SharedBytes+dynShared > SharedPerBlock {
		return fmt.Errorf("%s: %d bytes of static and %d of dynamic shared memory, over the %d of a block", name, r.SharedBytes, dynShared, SharedPerBlock)
	}
	if most := MaxThreads(name); most > 0 && threads > most {
		return fmt.Errorf("%s: a block of %d threads; the PTX declares at most %d (.maxntid, __launch_bounds__)", name, threads, most)
	}
	return nil
}
