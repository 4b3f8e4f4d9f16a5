package main

import (
	"bytes"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws `dsx bench --plot` with gonum.org/v1/plot: for each shape
// (B×N×T, in the order measured) the step time (left) and the extra device
// memory (right) of every measured row, one series per device, variant and
// matmul mode, each with its own colour and marker, and a legend below.
// When PyTorch eager was measured (--peers), both panels are ratios to eager
// on the same shape and mode (1 is eager; lower is faster or leaner);
// otherwise milliseconds per step and MiB. Log scales, but for the time
// ratio (which stays near 1). The PNG is written atomically.
func writePlot(path string, recs []benchRecord) error {
	png, err := plotPNG(recs)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := writeAtomic(path, png); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

type plotSeries struct {
	name      string
	time, mem map[int]float64 // by shape index
}

// plotData groups the measured rows into series over the shapes; ratio is
// set when every value is relative to PyTorch eager.
func plotData(recs []benchRecord) (shapes []string, series []*plotSeries, ratio bool) {
	mode := func(r benchRecord) string {
		if r.Mode == "" {
			return "fp32"
		}
		return r.Mode
	}
	type key struct {
		s    shape
		mode string
	}
	eager := map[key]benchRecord{}
	for _, r := range recs {
		if r.Variant == "torch-eager" && r.Skipped == "" && r.MsPerStep > 0 {
			eager[key{shape{r.B, r.N, r.T}, mode(r)}] = r
		}
	}
	ratio = len(eager) > 0
	idx := map[shape]int{}
	byName := map[string]*plotSeries{}
	for _, r := range recs {
		if r.Skipped != "" || r.MsPerStep <= 0 {
			continue
		}
		s := shape{r.B, r.N, r.T}
		t, m := r.MsPerStep, float64(r.ExtraBytes)/(1<<20)
		if ratio {
			e, ok := eager[key{s, mode(r)}]
			if !ok {
				continue // nothing to relate it to
			}
			t, m = r.MsPerStep/e.MsPerStep, 0
			if e.ExtraBytes > 0 {
				m = float64(r.ExtraBytes) / float64(e.ExtraBytes)
			}
		}
		if _, ok := idx[s]; !ok {
			idx[s] = len(shapes)
			shapes = append(shapes, fmt.Sprintf("%d×%d×%d", s.B, s.N, s.T))
		}
		name := r.Device + " " + r.Variant + " " + mode(r)
		ps := byName[name]
		if ps == nil {
			ps = &plotSeries{name: name, time: map[int]float64{}, mem: map[int]float64{}}
			byName[name] = ps
			series = append(series, ps)
		}
		ps.time[idx[s]] = t
		if m > 0 {
			ps.mem[idx[s]] = m
		}
	}
	sort.SliceStable(series, func(i, j int) bool { return series[i].name < series[j].name })
	return shapes, series, ratio
}

// plotPNG renders the two panels and the legend.
func plotPNG(recs []benchRecord) ([]byte, error) {
	shapes, series, ratio := plotData(recs)
	if len(shapes) == 0 {
		return nil, fmt.Errorf("no measured rows to draw")
	}
	titles := [2]string{"time per step, ms", "extra device memory, MiB"}
	if ratio {
		titles = [2]string{"time per step ÷ PyTorch eager's", "extra device memory ÷ PyTorch eager's"}
	}
	glyphs := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
		draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}
	style := func(i int) (color.Color, draw.GlyphStyle) {
		c := plotutil.Color(i)
		return c, draw.GlyphStyle{Color: c, Radius: vg.Points(4), Shape: glyphs[(i+i/len(glyphs))%len(glyphs)]}
	}
	var panels [2]*plot.Plot
	for p := range panels {
		pl := plot.New()
		pl.Title.Text = titles[p]
		pl.X.Label.Text = "B×N×T (batch, features, classes)"
		if !ratio || p == 1 { // ratios of time stay near 1: a linear axis reads better
			pl.Y.Scale = plot.LogScale{}
			pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		}
		pl.Add(plotter.NewGrid())
		pl.NominalX(shapes...)
		pl.X.Min, pl.X.Max = -0.5, float64(len(shapes))-0.5
		for i, s := range series {
			vals := s.time
			if p == 1 {
				vals = s.mem
			}
			var xys plotter.XYs
			for x := range shapes {
				if v, ok := vals[x]; ok && v > 0 {
					xys = append(xys, plotter.XY{X: float64(x), Y: v})
				}
			}
			if len(xys) == 0 {
				continue
			}
			ln, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, err
			}
			ln.Color, pts.GlyphStyle = style(i)
			ln.Width = vg.Points(1.5)
			pl.Add(ln, pts)
		}
		if ratio {
			one, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 1}, {X: float64(len(shapes)) - 0.5, Y: 1}})
			if err == nil {
				one.Color, one.Dashes = color.Gray{Y: 90}, []vg.Length{vg.Points(4), vg.Points(3)}
				pl.Add(one)
			}
		}
		panels[p] = pl
	}
	const W, H = 28 * vg.Centimeter, 17 * vg.Centimeter
	img := vgimg.New(W, H)
	dc := draw.New(img)
	legendH := vg.Length(len(series)+2)/3*vg.Points(15) + vg.Points(12)
	top := draw.Crop(dc, 0, 0, legendH, 0)
	cv := plot.Align([][]*plot.Plot{{panels[0], panels[1]}}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2}, top)
	panels[0].Draw(cv[0][0])
	panels[1].Draw(cv[0][1])
	// The legend in three columns under the panels.
	bottom := draw.Crop(dc, vg.Millimeter*8, 0, 0, legendH-H)
	const cols = 3
	per := (len(series) + cols - 1) / cols
	for c := 0; c < cols; c++ {
		lg := plot.NewLegend()
		lg.Left, lg.Top = true, true
		for i := c * per; i < min(len(series), (c+1)*per); i++ {
			ln, pts, err := plotter.NewLinePoints(plotter.XYs{{}})
			if err != nil {
				return nil, err
			}
			ln.Color, pts.GlyphStyle = style(i)
			ln.Width = vg.Points(1.5)
			lg.Add(series[i].name, ln, pts)
		}
		colW := (W - vg.Millimeter*8) / cols
		lg.Draw(draw.Crop(bottom, vg.Length(c)*colW, -vg.Length(cols-1-c)*colW, 0, 0))
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeAtomic writes data to path through a temporary file in the same
// folder, synced and renamed into place, so that path is never half
// written.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
