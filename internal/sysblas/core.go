package sysblas

import (
	"fmt"
	"strings"

	"golang.org/x/sys/cpu"
)

// coreWarning says when OpenBLAS runs generic SSE kernels on a CPU with
// AVX2 and FMA: a release older than the CPU does not recognise it and
// falls back to its "Prescott" kernels (OpenBLAS 0.3.21 does so on Intel's
// family 6 model 207), several times slower. OpenBLAS reads
// OPENBLAS_CORETYPE when it loads, which picks the kernels by name.
func coreWarning(core string) string {
	switch strings.ToLower(core) {
	case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "barcelona", "opteron", "opteron_sse3", "bobcat":
	default:
		return ""
	}
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return ""
	}
	want := "Haswell"
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL {
		want = "SkylakeX"
	}
	return fmt.Sprintf("OpenBLAS does not recognise this CPU and runs its generic %s kernels although the CPU has AVX2 and FMA; OPENBLAS_CORETYPE=%s selects faster ones", core, want)
}
