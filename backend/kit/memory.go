package kit

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"dsx/backend"
	"dsx/graph"
)

// Footprint estimates from cfg alone the bytes a layer of cfg needs on its
// device, by MemStats category, for batches in chunks of Config.Chunk rows
// (FootprintRows); a backend with a chunk rule of its own calls
// FootprintRows with its rows.
func Footprint(cfg backend.Config) (backend.MemStats, error) {
	return FootprintRows(cfg, cfg.Chunk(int(cfg.DType.Size())))
}

// FootprintRows estimates from cfg alone the bytes a layer of cfg needs on
// its device when its batches run in chunks of rows rows, by MemStats
// category, so that Open can refuse a layer that will not fit before it
// allocates anything:
//
//	State: W (N×T) and b (T); dW and db when wanted (a chunked batch sums
//	       into them); the optimizer's copies of W and b (SGD with
//	       momentum one, Adam two)
//	Input: x (B×N) and the targets (B labels or B×T probabilities), and dx
//	       (B×N) when wanted
//	Extra: the chunk's logits and their gradient (2·rows×T), the loss's
//	       per-row statistics (2 float64 values a row, 3 with z-loss), one
//	       chunk's column sums (T), the per-row losses with Reduction None
//	       (B, and rows for the chunk), and with MatMode bf16 the bfloat16
//	       copies of x, W and the gradient
//
// That is what the CPU backend's step holds (rows: its chunk rule);
// the CUDA backend reports its own buffers (lower.Program.MemStats). A
// backend adds what is its own. Every size is computed with overflow
// checks; a size beyond int64 is an error wrapping backend.ErrOutOfMemory.
// cfg.Spec must be valid.
func FootprintRows(cfg backend.Config, rows int) (backend.MemStats, error) {
	var z Sizer
	esize := int64(cfg.DType.Size())
	B, N, T := int64(cfg.B), int64(cfg.N), int64(cfg.T)
	chunk := int64(max(min(rows, cfg.B), 1))
	params := z.Add(z.Mul(N, T), T)
	copies := int64(1)
	switch o := cfg.Optimizer; {
	case o.Kind == backend.SGD && o.Momentum != 0:
		copies++
	case o.Kind == backend.Adam:
		copies += 2
	}
	state := z.Mul(esize, copies, params)
	if cfg.Want.DW {
		state = z.Add(state, z.Mul(esize, N, T))
	}
	if cfg.Want.DB {
		state = z.Add(state, z.Mul(esize, T))
	}
	targets := B
	if cfg.Loss.SoftTargets {
		targets = z.Mul(B, T)
	}
	input := z.Mul(esize, z.Add(z.Mul(B, N), targets))
	if cfg.Want.DX {
		input = z.Add(input, z.Mul(esize, B, N))
	}
	stats := int64(16)
	if cfg.Loss.ZLoss > 0 {
		stats = 24
	}
	extra := z.Add(z.Mul(2, esize, chunk, T), z.Mul(stats, chunk), z.Mul(esize, T))
	if cfg.Loss.Reduction == graph.None {
		extra = z.Add(extra, z.Mul(esize, z.Add(B, chunk)))
	}
	if cfg.MatMode == backend.BF16 {
		extra = z.Add(extra, z.Mul(2, z.Add(z.Mul(chunk, N), z.Mul(N, T), z.Mul(chunk, T))))
	}
	m := backend.MemStats{StateBytes: state, InputBytes: input, ExtraBytes: extra, ChunkRows: int(chunk)}
	if err := z.Err(); err != nil {
		return m, fmt.Errorf("layer B×N×T = %d×%d×%d: %w", cfg.B, cfg.N, cfg.T, err)
	}
	return m, nil
}

// Sizer multiplies and adds non-negative byte counts, saturating at
// math.MaxInt64 and remembering that it did, so that a size computed from
// user-given shapes never wraps around to a small number.
type Sizer struct{ over bool }

// Mul returns the product of a, or math.MaxInt64 on overflow.
func (z *Sizer) Mul(a ...int64) int64 {
	p := uint64(1)
	for _, x := range a {
		hi, lo := bits.Mul64(p, uint64(max(x, 0)))
		if hi != 0 || lo > math.MaxInt64 {
			z.over = true
			return math.MaxInt64
		}
		p = lo
	}
	return int64(p)
}

// Add returns the sum of a, or math.MaxInt64 on overflow.
func (z *Sizer) Add(a ...int64) int64 {
	s := int64(0)
	for _, x := range a {
		if x > math.MaxInt64-s {
			z.over = true
			return math.MaxInt64
		}
		s += max(x, 0)
	}
	return s
}

// Err wraps ErrOutOfMemory when a result overflowed.
func (z *Sizer) Err() error {
	if z.over {
		return fmt.Errorf("%w: the sizes overflow 64-bit byte counts", backend.ErrOutOfMemory)
	}
	return nil
}

// maxAddressable is the most a 64-bit process can map (48-bit virtual
// addresses, half of them the kernel's): the bound where MemAvailable is
// unknown.
const maxAddressable = 1 << 47

// HostAvailable returns the host memory new allocations can take without
// swapping or failing: the least of MemAvailable from /proc/meminfo, the
// process's cgroup memory limit less its usage, and RLIMIT_AS less the
// address space in use; ok is false where none is known (not Linux).
func HostAvailable() (bytes int64, ok bool) {
	bytes, _, ok = hostAvailable()
	return bytes, ok
}

// memAvailable reads the MemAvailable line of /proc/meminfo ("MemAvailable:
// 123456 kB").
func memAvailable(r io.Reader) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "MemAvailable:" {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || kb < 0 || kb > math.MaxInt64/1024 {
			return 0, false
		}
		if len(f) < 3 || f[2] != "kB" {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

// CheckHostMemory returns an error wrapping ErrOutOfMemory when need bytes
// exceed what the host has available (HostAvailable; where that is unknown,
// the address space), saying how much was asked for, how much there is and
// which bound applies (MemAvailable, the cgroup limit, RLIMIT_AS); what
// names the request.
func CheckHostMemory(what string, need int64) error {
	avail, src, ok := hostAvailable()
	if !ok {
		avail, src = maxAddressable, "the address space"
	}
	if need > avail {
		return fmt.Errorf("%s: %w: needs about %s, %s available (%s)", what, backend.ErrOutOfMemory, FormatBytes(need), FormatBytes(avail), src)
	}
	return nil
}

// FormatBytes writes n in binary units: "512 B", "3.50 MiB", "1.25 TiB".
func FormatBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.2f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.2f MiB", float64(n)/(k*k))
	case n < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
	case n < k*k*k*k*k:
		return fmt.Sprintf("%.2f TiB", float64(n)/(k*k*k*k))
	}
	return fmt.Sprintf("%.2f PiB", float64(n)/(k*k*k*k*k))
}
