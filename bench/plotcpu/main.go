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
	out := flag.String("out", "", "PNG to write")
	flag.Parse()
	if *dir == "" || *shapes == "" || *cols == "" || *out == "" || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "plotcpu: -dir, -shapes, -cols, -rounds and -out are needed")
		os.Exit(2)
	}
	if err := run(*dir, strings.Split(*shapes, ","), strings.Split(*cols, ","), *rounds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "plotcpu:", err)
		os.Exit(1)
	}
}

// point is one column's medians at one shape.
type point struct{ T, ms, mib float64 }

func run(dir string, shapes, cols []string, rounds int, out string) error {
	series := map[string][]point{}
	for _, s := range shapes {
		f := strings.Split(s, "x")
		if len(f) != 3 {
			return fmt.Errorf("shape %q is not BxNxT", s)
		}
		T, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf("shape %q: %v", s, err)
		}
		for _, c := range cols {
			var ms, mib []float64
			for r := 1; r <= rounds; r++ {
				base := filepath.Join(dir, fmt.Sprintf("r%d-%s-%s", r, s, c))
				if v, ok := stepMs(base + ".json"); ok {
					ms = append(ms, v)
				}
				if v, ok := rssMiB(base + ".rss"); ok {
					mib = append(mib, v)
				}
			}
			if len(ms) > 0 && len(mib) > 0 {
				series[c] = append(series[c], point{float64(T), median(ms), median(mib)})
			}
		}
	}
	png, err := draw2(series, cols)
	if err != nil {
		return err
	}
	return atomicfile.Write(out, func(w io.Writer) error { _, err := w.Write(png); return err })
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

// draw2 makes the two panels side by side.
func draw2(series map[string][]point, cols []string) ([]byte, error) {
	var panels [2]*plot.Plot
	for i, what := range []string{"ms per training step", "peak resident memory (MiB)"} {
		p := plot.New()
		p.Title.Text = what
		p.X.Label.Text = "classes T"
		p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
		p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
		p.Legend.Top, p.Legend.Left = true, true
		for k, c := range cols {
			pts := series[c]
			if len(pts) == 0 {
				continue
			}
			sort.Slice(pts, func(a, b int) bool { return pts[a].T < pts[b].T })
			xy := make(plotter.XYs, len(pts))
			for j, pt := range pts {
				xy[j].X, xy[j].Y = pt.T, pt.ms
				if i == 1 {
					xy[j].Y = pt.mib
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
	const W, H = 28 * vg.Centimeter, 11 * vg.Centimeter
	img := vgimg.New(W, H)
	dc := draw.New(img)
	cv := plot.Align([][]*plot.Plot{{panels[0], panels[1]}}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 2}, dc)
	panels[0].Draw(cv[0][0])
	panels[1].Draw(cv[0][1])
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
