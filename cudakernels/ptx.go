package cudakernels

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Entry is one kernel entry point of a PTX module, as the module declares
// it: what the driver checks a launch against.
type Entry struct {
	Name string
	// Params are the parameters' PTX types in order (".u64", ".f64", …);
	// every one of ours is 8 bytes (gorgonia.org/cu copies each argument as
	// 8 bytes).
	Params []string
	// MaxThreads is the most threads a block may have (.maxntid, from
	// __launch_bounds__), 0 when the kernel declares none.
	MaxThreads int
}

var (
	entryDecl = regexp.MustCompile(`(?s)\.(?:visible|weak)\s+\.entry\s+(\w+)\s*\(([^)]*)\)([^{]*)\{`)
	ptxParam  = regexp.MustCompile(`\.param\s+(\.\w+)\s+(?:\.align\s+\d+\s+)?(\w+)`)
	maxntid   = regexp.MustCompile(`\.maxntid\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?`)
)

// Entries reads the .entry declarations of module's embedded PTX.
func Entries(module string) ([]Entry, error) {
	ptx, err := PTX(module)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, m := range entryDecl.FindAllStringSubmatch(ptx, -1) {
		e := Entry{Name: m[1]}
		for _, p := range ptxParam.FindAllStringSubmatch(m[2], -1) {
			e.Params = append(e.Params, p[1])
		}
		if n := maxntid.FindStringSubmatch(m[3]); n != nil {
			e.MaxThreads = 1
			for _, d := range n[1:] {
				if d != "" {
					v, _ := strconv.Atoi(d)
					e.MaxThreads *= v
				}
			}
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cudakernels: %s.ptx declares no .entry", module)
	}
	return out, nil
}

// ParamBytes is the width of a PTX parameter type (".u64" → 8), 0 for a
// type that is not a scalar.
func ParamBytes(typ string) int {
	t := strings.TrimPrefix(typ, ".")
	if len(t) < 2 {
		return 0
	}
	switch t[0] {
	case 'u', 's', 'b', 'f':
		bits, err := strconv.Atoi(t[1:])
		if err != nil {
			return 0
		}
		return bits / 8
	}
	return 0
}

// MaxThreads is the .maxntid of kernel name (0: none declared, or no such
// kernel), for launch checks. The PTX is read once.
func MaxThreads(name string) int {
	bounds.once.Do(func() {
		bounds.m = map[string]int{}
		for _, m := range Modules {
			es, _ := Entries(m)
			for _, e := range es {
				bounds.m[e.Name] = e.MaxThreads
			}
		}
	})
	return bounds.m[name]
}

var bounds struct {
	once sync.Once
	m    map[string]int
}
