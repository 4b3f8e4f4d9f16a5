//go:build linux

package data

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLoadNPY reads a float32 .npy file of rows×N features that is in
// the page cache, and times `cat FILE > /dev/null` on the same file in the
// same iterations, each cat just before its load. Two loads per iteration:
//
//   - load-s, x-cat: LoadFile, into fresh memory as a new process gets it
//     (the kernel faults in and zeroes every page; on a VM whose free memory
//     goes back to the host, the host faults it in too);
//   - warm-s, x-cat-warm: the same read and check into memory already
//     touched, as cat's buffer is: the reader's own cost.
//
// Times are medians; the ratios are medians of each iteration's ratios
// (robust to a shared machine's load changing between iterations). The
// target is x-cat ≤ 2 at 1,000,000×1024 (4 GB). The file is written once
// into the benchmark's temporary folder; sizes that do not fit the free
// disk or memory are skipped with the reason.
//
//	go test ./data -run '^$' -bench LoadNPY -benchtime 3x
func BenchmarkLoadNPY(b *testing.B) {
	for _, sh := range []struct{ rows, n int }{{100000, 1024}, {1000000, 1024}} {
		b.Run(fmt.Sprintf("rows=%d,N=%d", sh.rows, sh.n), func(b *testing.B) {
			size := int64(sh.rows) * int64(sh.n) * 4
			dir := b.TempDir()
			if free := freeDisk(dir); free < size+(1<<30) {
				b.Skipf("needs %.1f GB of disk in %s, %.1f GB free", float64(size)/1e9, dir, float64(free)/1e9)
			}
			// The set and the warm buffer (2·size) and the file in the page
			// cache (size), with room to spare.
			if avail := memAvailable(); avail < 3*size+(2<<30) {
				b.Skipf("needs %.1f GB of available memory, %.1f GB available", float64(3*size+(2<<30))/1e9, float64(avail)/1e9)
			}
			p := filepath.Join(dir, "x.npy")
			if err := writeBenchNPY(p, sh.rows, sh.n); err != nil {
				b.Fatal(err)
			}
			catOnce := func() time.Duration {
				t0 := time.Now()
				cmd := exec.Command("cat", p)
				devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				defer devnull.Close()
				cmd.Stdout = devnull
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			catOnce() // into the page cache
			warm := make([]float32, sh.rows*sh.n)
			for i := range warm {
				warm[i] = 1 // touched: no page faults left
			}
			readWarm := func() time.Duration {
				t0 := time.Now()
				f, size, err := openRegular(p)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				a, err := openNPY(f, p, size)
				if err == nil {
					err = a.readFeatures(warm, sh.n, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
				return time.Since(t0)
			}
			var loads, cats, ratios, warms, warmRatios []float64
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				cats = append(cats, catOnce().Seconds())
				warms = append(warms, readWarm().Seconds())
				warmRatios = append(warmRatios, warms[len(warms)-1]/cats[len(cats)-1])
				runtime.GC()
				debug.FreeOSMemory() // every load starts from fresh memory, as a new process does
				b.StartTimer()
				t0 := time.Now()
				s, err := LoadFile(p, Options{Unlabelled: true})
				loads = append(loads, time.Since(t0).Seconds())
				ratios = append(ratios, loads[len(loads)-1]/cats[len(cats)-1])
				if err != nil {
					b.Fatal(err)
				}
				if s.Rows != sh.rows || s.X[len(s.X)-1] != benchValue(len(s.X)-1) {
					b.Fatalf("read %d rows, last value %v", s.Rows, s.X[len(s.X)-1])
				}
			}
			b.StopTimer()
			b.ReportMetric(medianOf(loads), "load-s")
			b.ReportMetric(medianOf(cats), "cat-s")
			b.ReportMetric(medianOf(ratios), "x-cat")
			b.ReportMetric(medianOf(warms), "warm-s")
			b.ReportMetric(medianOf(warmRatios), "x-cat-warm")
		})
	}
}

func benchValue(i int) float32 { return float32(i%1000) * 0.25 }

// writeBenchNPY writes rows×n float32 values without holding them.
func writeBenchNPY(path string, rows, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	nw, err := NewNPYWriter[float32](w, []int{rows, n})
	if err != nil {
		return err
	}
	row := make([]float32, n)
	for r := range rows {
		for j := range row {
			row[j] = benchValue(r*n + j)
		}
		if err := nw.Write(row...); err != nil {
			return err
		}
	}
	if err := nw.Close(); err != nil {
		return err
	}
	return w.Flush()
}

func freeDisk(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

func memAvailable() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
