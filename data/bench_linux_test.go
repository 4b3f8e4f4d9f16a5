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
// same iterations, each cat just before the loads. Three loads per
// iteration, each ending with every value checked for NaN and ±Inf:
//
//   - load-s, x-cat: LoadFile with Options.Map, as dsx loads: the file's
//     pages mapped in place, no copy;
//   - new-s, x-cat-new: the same in a new process (this test binary run
//     again), timed from its start to its exit, as a user gets it;
//   - read-s, x-cat-read: LoadFile without Map, a copy into fresh memory
//     (the kernel faults in and zeroes every page; on a VM whose free
//     memory goes back to the host, the host faults it in too).
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
			// The copy and the file in the page cache, with room to spare.
			if avail := memAvailable(); avail < 2*size+(2<<30) {
				b.Skipf("needs %.1f GB of available memory, %.1f GB available", float64(2*size+(2<<30))/1e9, float64(avail)/1e9)
			}
			p := filepath.Join(dir, "x.npy")
			if err := writeBenchNPY(p, sh.rows, sh.n); err != nil {
				b.Fatal(err)
			}
			run := func(name string, args ...string) time.Duration {
				t0 := time.Now()
				cmd := exec.Command(name, args...)
				var out strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					b.Fatalf("%s: %v\n%s", name, err, out.String())
				}
				return time.Since(t0)
			}
			catOnce := func() time.Duration { return run("sh", "-c", `exec cat "$0" > /dev/null`, p) }
			load := func(o Options) time.Duration {
				o.Unlabelled = true
				t0 := time.Now()
				s, err := LoadFile(p, o)
				d := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if s.Rows != sh.rows || s.X[len(s.X)-1] != benchValue(len(s.X)-1) || s.Stats.Mapped != o.Map {
					b.Fatalf("read %d rows, last value %v, mapped %v", s.Rows, s.X[len(s.X)-1], s.Stats.Mapped)
				}
				s.Close()
				return d
			}
			self, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			catOnce() // into the page cache
			var cats, loads, news, reads, xLoad, xNew, xRead []float64
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				cat := catOnce().Seconds()
				cats = append(cats, cat)
				b.StartTimer()
				loads = append(loads, load(Options{Map: true}).Seconds())
				b.StopTimer()
				news = append(news, run("env", "DSX_LOAD_CHILD="+p, self, "-test.run=^TestLoadChild$").Seconds())
				runtime.GC()
				debug.FreeOSMemory() // every copy goes to fresh memory, as in a new process
				reads = append(reads, load(Options{}).Seconds())
				runtime.GC()
				debug.FreeOSMemory()
				xLoad = append(xLoad, loads[len(loads)-1]/cat)
				xNew = append(xNew, news[len(news)-1]/cat)
				xRead = append(xRead, reads[len(reads)-1]/cat)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(medianOf(cats), "cat-s")
			b.ReportMetric(medianOf(loads), "load-s")
			b.ReportMetric(medianOf(xLoad), "x-cat")
			b.ReportMetric(medianOf(news), "new-s")
			b.ReportMetric(medianOf(xNew), "x-cat-new")
			b.ReportMetric(medianOf(reads), "read-s")
			b.ReportMetric(medianOf(xRead), "x-cat-read")
		})
	}
}

// TestLoadChild is BenchmarkLoadNPY's new process: with DSX_LOAD_CHILD set
// it loads that file as dsx does; otherwise it does nothing.
func TestLoadChild(t *testing.T) {
	p := os.Getenv("DSX_LOAD_CHILD")
	if p == "" {
		t.Skip("the benchmark's helper process")
	}
	s, err := LoadFile(p, Options{Unlabelled: true, Map: true})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Stats.Mapped || s.X[len(s.X)-1] != benchValue(len(s.X)-1) {
		t.Fatalf("mapped %v, last value %v", s.Stats.Mapped, s.X[len(s.X)-1])
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
