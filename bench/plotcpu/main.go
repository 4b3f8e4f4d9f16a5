// Command plotcpu draws bench/run-cpu.sh's records as time and peak memory
// against the number of classes T: the left panel the median step time
// (ms), the right the median peak resident memory (MiB, the process's max
// RSS), one series per column (dsx default, dsx unchunked, PyTorch, ...),
// log scales on both axes. bench/run-cpu.sh runs it when PLOT is set:
//
//	PLOT=bench/cpu-vs-t.png COLS=dsx,whole,torch bench/run-cpu.sh 3 4096x1024x100,4096x1024x1000,...
//	go run ./bench/plotcpu -dir DIR -shapes 4096x1024x100,... -cols dsx,whole,torch -rounds 3 -out FILE.png
//
// DIR holds run-cpu.sh's raw records: rROUND-SHAPE-COL.json (the
// process's records; the median of their ms_per_step) and .rss (KiB).
// -save FILE also writes what was read as JSON lines (round, shape, column,
// ms per step, peak KiB), and -summary FILE draws from such a file instead
// of DIR (bench/results-cpu-t.jsonl: the records behind bench/cpu-vs-t.png):
//
//	go run ./bench/plotcpu -summary bench/results-cpu-t.jsonl -out bench/cpu-vs-t.png
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"dsx/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var names = map[string]string{"dsx": "dsx (default chunks)", "whole": "dsx unchunked", "off": "dsx DSX_BLAS=off",
	"thr": "dsx DSX_BLAS_THREADS=n", "base": "base", "torch": "PyTorch 1.13", "torchhuge": "PyTorch hugetlb", "numpy": "numpy"}

func main() {
	dir := flag.String("dir", "", "run-cpu.sh's record folder (OUT)")
	shapes := flag.String("shapes", "", "comma-separated BxNxT, as run")
	cols := flag.String("cols", "", "comma-separated columns, as run")
	rounds := flag.Int("rounds", 1, "rounds run")
	save := flag.String("save", "", "also write the records read from -dir to this JSON-lines file")
	summary := flag.String("summary", "", "draw from this JSON-lines file (written by -save) instead of -dir")
	out := flag.String("out", "", "PNG to write")
	flag.Parse()
	var recs []record
	var err error
	switch {
	case *out == "":
		err = fmt.Errorf("-out is needed")
	case *summary != "":
		recs, err = readSummary(*summary)
	case *dir == "" || *shapes == "" || *cols == "" || *rounds < 1:
		err = fmt.Errorf("-dir, -shapes, -cols and -rounds are needed (or -summary)")
	default:
		recs = readDir(*dir, strings.Split(*shapes, ","), strings.Split(*cols, ","), *rounds)
		if *save != "" {
			err = writeSummary(*save, recs)
		}
	}
	if err == nil {
		err = plotRecords(recs, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "plotcpu:", err)
		os.Exit(1)
	}
}

// record is one process's result: its median step time and peak RSS.
type record struct {
	Round  int     `json:"round"`
	Shape  string  `json:"shape"`
	Column string  `json:"column"`
	Ms     float64 `json:"ms_per_step"`
	KiB    float64 `json:"max_rss_kib"`
}

func readDir(dir string, shapes, cols []string, rounds int) []record {
	var recs []record
	for r := 1; r <= rounds; r++ {
		for _, s := range shapes {
			for _, c := range cols {
				base := filepath.Join(dir, fmt.Sprintf("r%d-%s-%s", r, s, c))
				ms, ok1 := stepMs(base + ".json")
				mib, ok2 := rssMiB(base + ".rss")
				if ok1 && ok2 {
					recs = append(recs, record{r, s, c, ms, mib * 1024})
				}
			}
		}
	}
	return recs
}

func writeSummary(path string, recs []record) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		e := json.NewEncoder(w)
		for _, r := range recs {
			if err := e.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
}

func readSummary(path string) ([]record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var recs []record
	d := json.NewDecoder(bytes.NewReader(b))
	for d.More() {
		var r record
		if err := d.Decode(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// point is one column's medians at one shape; rel is the median over the
// rounds of its ms over PyTorch's (column torch) in the same round, 0 when
// there is none.
type point struct{ T, ms, mib, rel float64 }

// plotRecords draws the medians over rounds per shape and column, in the
// order the columns first appear.
func plotRecords(recs []record, out string) error {
	type key struct{ shape, col string }
	type rkey struct {
		key
		round int
	}
	ms, mib, rel := map[key][]float64{}, map[key][]float64{}, map[key][]float64{}
	byRound := map[rkey]float64{}
	var cols []string
	for _, r := range recs {
		k := key{r.Shape, r.Column}
		if len(ms[k]) == 0 && !contains(cols, r.Column) {
			cols = append(cols, r.Column)
		}
		ms[k] = append(ms[k], r.Ms)
		mib[k] = append(mib[k], r.KiB/1024)
		byRound[rkey{k, r.Round}] = r.Ms
	}
	// Relative times are taken round by round (the two processes ran
	// seconds apart), then their median: as bench/run-cpu.sh's ratios.
	for rk, v := range byRound {
		if t, ok := byRound[rkey{key{rk.shape, "torch"}, rk.round}]; ok && t > 0 {
			rel[rk.key] = append(rel[rk.key], v/t)
		}
	}
	series := map[string][]point{}
	for k := range ms {
		f := strings.Split(k.shape, "x")
		if len(f) != 3 {
			return fmt.Errorf("shape %q is not BxNxT", k.shape)
		}
		T, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf("shape %q: %v", k.shape, err)
		}
		r := 0.0
		if len(rel[k]) > 0 {
			r = median(rel[k])
		}
		series[k.col] = append(series[k.col], point{float64(T), median(ms[k]), median(mib[k]), r})
	}
	png, err := draw2(series, cols)
	if err != nil {
		return err
	}
	return atomicfile.Write(out, func(w io.Writer) error { _, err := w.Write(png); return err })
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// stepMs is the median ms_per_step of a record file.
func stepMs(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	var recs []struct {
		Ms float64 `json:"ms_per_step"`
	}
	if json.Unmarshal(b, &recs) != nil || len(recs) == 0 {
		return 0, false
	}
	var v []float64
	for _, r := range recs {
		if r.Ms > 0 {
			v = append(v, r.Ms)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

// rssMiB reads /usr/bin/time's %M (KiB), the file's last field.
func rssMiB(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	k, err := strconv.ParseFloat(f[len(f)-1], 64)
	return k / 1024, err == nil && k > 0
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

var colours = []color.Color{color.RGBA{0, 90, 200, 255}, color.RGBA{120, 170, 240, 255}, color.RGBA{220, 80, 20, 255},
	color.RGBA{240, 170, 60, 255}, color.RGBA{40, 160, 60, 255}, color.RGBA{120, 120, 120, 255}}

// draw2 makes the panels side by side: time, time relative to PyTorch
// (when it was measured) and memory.
func draw2(series map[string][]point, cols []string) ([]byte, error) {
	titles := []string{"ms per training step", "step time / PyTorch's (median of the rounds' ratios)", "peak resident memory (MiB)"}
	if len(series["torch"]) == 0 {
		titles = []string{titles[0], titles[2]}
	}
	panels := make([]*plot.Plot, len(titles))
	for i, what := range titles {
		p := plot.New()
		p.Title.Text = what
		p.X.Label.Text = "classes T"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
		relative := strings.HasPrefix(what, "step time /")
		if relative {
			p.Y.Scale, p.Y.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
		}
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = !relative, true // PyTorch's line is the relative panel's top
		for k, c := range cols {
			pts := series[c]
			if len(pts) == 0 {
				continue
			}
			sort.Slice(pts, func(a, b int) bool { return pts[a].T < pts[b].T })
			xy := make(plotter.XYs, len(pts))
			for j, pt := range pts {
				switch {
				case relative:
					xy[j].X, xy[j].Y = pt.T, pt.rel
				case strings.HasPrefix(what, "peak"):
					xy[j].X, xy[j].Y = pt.T, pt.mib
				default:
					xy[j].X, xy[j].Y = pt.T, pt.ms
				}
			}
			l, s, err := plotter.NewLinePoints(xy)
			if err != nil {
				return nil, err
			}
			l.Color, s.Color = colours[k%len(colours)], colours[k%len(colours)]
			l.Width = vg.Points(1.5)
			s.Shape = draw.CircleGlyph{}
			name := names[c]
			if name == "" {
				name = c
			}
			p.Add(l, s)
			p.Legend.Add(name, l, s)
		}
		panels[i] = p
	}
	W, H := vg.Length(len(panels))*14*vg.Centimeter, 11*vg.Centimeter
	img := vgimg.New(W, H)
	dc := draw.Crop(draw.New(img), vg.Millimeter*2, -vg.Millimeter*2, vg.Millimeter*2, -vg.Millimeter*4)
	cv := plot.Align([][]*plot.Plot{panels}, draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 8, PadY: vg.Millimeter * 2}, dc)
	for i, p := range panels {
		p.Draw(cv[0][i])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
