package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
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

// writePlot draws `dsx bench --plot` with gonum.org/v1/plot: for each shape
// (B×N×T, in the order measured) the step time (left) and the extra device
// memory (right) of every measured row, one series per implementation
// (device and variant) and matmul mode, and a legend below with a column
// per mode. The colour says the implementation, the marker and the line's
// dashes the mode (plotStyles: no two series look alike, however many), and
// each mode's points sit a little to the side so that equal values of two
// modes both show.
// When PyTorch eager was measured (--peers), both panels are ratios to eager
// on the same shape and mode (1 is eager; lower is faster or leaner);
// otherwise milliseconds per step and MiB. Log scales, but for the time
// ratio (which stays near 1). The PNG is written atomically.
func writePlot(path string, recs []benchRecord) error {
	png, err := plotPNG(recs)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(png); return err }); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

type plotSeries struct {
	name      string          // legend text: impl and mode
	impl      string          // the variant, after the device when the records span several
	mode      string          // matmul mode
	time, mem map[int]float64 // by shape index
}

// plotData groups the measured rows into series over the shapes; ratio is
// set when every value is relative to PyTorch eager; device is the one
// device of all the rows ("" when they span several: then each series'
// impl names its device). Series come ordered by
// implementation (dsx's variants, then the peers', each alphabetically) and
// then by mode (fp32, tf32, bf16, then others alphabetically).
func plotData(recs []benchRecord) (shapes []string, series []*plotSeries, ratio bool, device string) {
	// A series' "mode" is its precision and inputs (gradients and loss
	// options are in the key that relates it to eager, not the legend).
	mode := func(r benchRecord) string {
		m := r.Mode
		switch {
		case r.Storage == "bf16":
			m = "bf16 storage"
		case m == "":
			m = "fp32"
		}
		if r.Inputs == "lm" {
			m += " lm"
		}
		return m
	}
	type key struct {
		s       shape
		setting string
	}
	eager := map[key]benchRecord{}
	devices := map[string]bool{}
	for _, r := range recs {
		if r.Variant == "torch-eager" && r.Skipped == "" && r.MsPerStep > 0 {
			eager[key{shape{r.B, r.N, r.T}, r.setting()}] = r
		}
		if r.Skipped == "" && r.MsPerStep > 0 {
			devices[r.Device] = true
		}
	}
	ratio = len(eager) > 0
	if len(devices) == 1 {
		for d := range devices {
			device = d
		}
	}
	idx := map[shape]int{}
	byName := map[string]*plotSeries{}
	for _, r := range recs {
		if r.Skipped != "" || r.MsPerStep <= 0 {
			continue
		}
		s := shape{r.B, r.N, r.T}
		t, m := r.MsPerStep, float64(r.ExtraBytes)/(1<<20)
		if ratio {
			e, ok := eager[key{s, r.setting()}]
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
		impl := r.Variant
		if device == "" {
			impl = r.Device + " " + r.Variant
		}
		name := impl + " " + mode(r)
		ps := byName[name]
		if ps == nil {
			ps = &plotSeries{name: name, impl: impl, mode: mode(r), time: map[int]float64{}, mem: map[int]float64{}}
			byName[name] = ps
			series = append(series, ps)
		}
		ps.time[idx[s]] = t
		if m > 0 {
			ps.mem[idx[s]] = m
		}
	}
	peer := func(impl string) bool {
		for _, p := range []string{"torch-eager", "torch-compile", "cce", "liger-flce"} {
			if strings.HasSuffix(impl, p) {
				return true
			}
		}
		return false
	}
	modeRank := map[string]int{"fp32": 0, "tf32": 1, "bf16": 2, "bf16 storage": 3, "fp32 lm": 4, "bf16 storage lm": 5}
	mr := func(m string) int {
		if r, ok := modeRank[m]; ok {
			return r
		}
		return len(modeRank)
	}
	sort.SliceStable(series, func(i, j int) bool {
		a, b := series[i], series[j]
		switch {
		case a.impl != b.impl && peer(a.impl) != peer(b.impl):
			return !peer(a.impl)
		case a.impl != b.impl:
			return a.impl < b.impl
		case mr(a.mode) != mr(b.mode):
			return mr(a.mode) < mr(b.mode)
		}
		return a.mode < b.mode
	})
	return shapes, series, ratio, device
}

// seriesStyle is how one series is drawn; dx shifts its points off the
// shape's position (by mode), so that modes with equal values stay visible.
type seriesStyle struct {
	color  color.Color
	glyph  draw.GlyphDrawer
	dashes []vg.Length
	dx     float64
}

// plotPalette is Tableau's ten colours (distinct in print and to most
// colour-blind readers), one per implementation.
var plotPalette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 255}, {0xf2, 0x8e, 0x2b, 255}, {0xe1, 0x57, 0x59, 255}, {0x76, 0xb7, 0xb2, 255},
	{0x59, 0xa1, 0x4f, 255}, {0xed, 0xc9, 0x48, 255}, {0xb0, 0x7a, 0xa1, 255}, {0xff, 0x9d, 0xa7, 255},
	{0x9c, 0x75, 0x5f, 255}, {0xba, 0xb0, 0xac, 255},
}

// plotGlyphs are the markers, one per mode (fp32, tf32, bf16, ...).
var plotGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{},
	draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}

// plotDashes is the d-th dash pattern: solid, dashed, dotted, dash-dot, then
// dashes that lengthen with d (every d its own pattern).
func plotDashes(d int) []vg.Length {
	pt := vg.Points
	switch d {
	case 0:
		return nil
	case 1:
		return []vg.Length{pt(6), pt(3)}
	case 2:
		return []vg.Length{pt(1.5), pt(2.5)}
	case 3:
		return []vg.Length{pt(6), pt(2), pt(1.5), pt(2)}
	}
	return []vg.Length{pt(1.5 * float64(d)), pt(2.5)}
}

// plotStyles gives the series their styles: implementation i (in order of
// first appearance) the colour i mod 10, mode m of M the marker m and the
// dash pattern m + M·⌊i/10⌋. The colour and the dash pattern together name
// i and m, so no two series share a style, however many there are; up to
// ten implementations, one colour is one implementation and one marker and
// dash pattern one mode.
func plotStyles(series []*plotSeries) []seriesStyle {
	impls, modes := map[string]int{}, map[string]int{}
	for _, s := range series {
		if _, ok := impls[s.impl]; !ok {
			impls[s.impl] = len(impls)
		}
		if _, ok := modes[s.mode]; !ok {
			modes[s.mode] = len(modes)
		}
	}
	step := min(0.08, 0.5/float64(len(modes)))
	st := make([]seriesStyle, len(series))
	for k, s := range series {
		i, m := impls[s.impl], modes[s.mode]
		st[k] = seriesStyle{
			color:  plotPalette[i%len(plotPalette)],
			glyph:  plotGlyphs[m%len(plotGlyphs)],
			dashes: plotDashes(m + len(modes)*(i/len(plotPalette))),
			dx:     step * (float64(m) - float64(len(modes)-1)/2),
		}
	}
	return st
}

// lineOf is a series' line and markers in its style.
func lineOf(xys plotter.XYs, st seriesStyle) (*plotter.Line, *plotter.Scatter, error) {
	ln, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, nil, err
	}
	ln.Color, ln.Width, ln.Dashes = st.color, vg.Points(1.5), st.dashes
	pts.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(4), Shape: st.glyph}
	return ln, pts, nil
}

// legendColumns lays the legend out: a column per mode (the implementations
// in rows, a blank where one was not measured in that mode) when there are
// at most four modes, else the series in order over three columns.
func legendColumns(series []*plotSeries) [][]int {
	var modes, impls []string
	seen := map[string]bool{}
	at := map[[2]string]int{}
	for k, s := range series {
		if !seen["m"+s.mode] {
			seen["m"+s.mode] = true
			modes = append(modes, s.mode)
		}
		if !seen["i"+s.impl] {
			seen["i"+s.impl] = true
			impls = append(impls, s.impl)
		}
		at[[2]string{s.impl, s.mode}] = k
	}
	var cols [][]int
	if len(modes) <= 4 {
		for _, m := range modes {
			var col []int
			for _, i := range impls {
				k, ok := at[[2]string{i, m}]
				if !ok {
					k = -1
				}
				col = append(col, k)
			}
			cols = append(cols, col)
		}
		return cols
	}
	per := (len(series) + 2) / 3
	for c := 0; c*per < len(series); c++ {
		var col []int
		for k := c * per; k < min(len(series), (c+1)*per); k++ {
			col = append(col, k)
		}
		cols = append(cols, col)
	}
	return cols
}

// plotPNG renders the two panels and the legend.
func plotPNG(recs []benchRecord) ([]byte, error) {
	shapes, series, ratio, device := plotData(recs)
	if len(shapes) == 0 {
		return nil, fmt.Errorf("no measured rows to draw")
	}
	titles := [2]string{"time per step, ms", "extra device memory, MiB"}
	if ratio {
		titles = [2]string{"time per step ÷ PyTorch eager's", "extra device memory ÷ PyTorch eager's"}
	}
	if device != "" {
		titles[0], titles[1] = device+": "+titles[0], device+": "+titles[1]
	}
	styles := plotStyles(series)
	var panels [2]*plot.Plot
	for p := range panels {
		pl := plot.New()
		pl.Title.Text = titles[p]
		pl.X.Label.Text = "B×N×T (batch, features, classes)"
		if !ratio || p == 1 { // ratios of time stay near 1: a linear axis reads better
			pl.Y.Scale = plot.LogScale{}
			pl.Y.Tick.Marker = ticks125{}
		}
		pl.Add(plotter.NewGrid())
		pl.NominalX(shapes...)
		pl.X.Min, pl.X.Max = -0.5, float64(len(shapes))-0.5
		drawn := false
		for i, s := range series {
			vals := s.time
			if p == 1 {
				vals = s.mem
			}
			var xys plotter.XYs
			for x := range shapes {
				if v, ok := vals[x]; ok && v > 0 {
					xys = append(xys, plotter.XY{X: float64(x) + styles[i].dx, Y: v})
				}
			}
			if len(xys) == 0 {
				continue
			}
			ln, pts, err := lineOf(xys, styles[i])
			if err != nil {
				return nil, err
			}
			pl.Add(ln, pts)
			drawn = true
		}
		if !drawn { // no row measured this (memory on the CPU): an empty linear panel, not a log axis over nothing
			pl.Y.Scale, pl.Y.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
			pl.Y.Min, pl.Y.Max = 0, 1
			pl.Title.Text += " (not measured)"
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
	cols := legendColumns(series)
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c))
	}
	legendH := vg.Length(rows)*vg.Points(15) + vg.Points(12)
	top := draw.Crop(dc, 0, 0, legendH, 0)
	cv := plot.Align([][]*plot.Plot{{panels[0], panels[1]}}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2}, top)
	panels[0].Draw(cv[0][0])
	panels[1].Draw(cv[0][1])
	// The legend under the panels, in the columns of legendColumns.
	bottom := draw.Crop(dc, vg.Millimeter*8, 0, 0, legendH-H)
	colW := (W - vg.Millimeter*8) / vg.Length(len(cols))
	for c, col := range cols {
		lg := plot.NewLegend()
		lg.Left, lg.Top = true, true
		lg.ThumbnailWidth = vg.Points(36) // room for a dash pattern
		for _, k := range col {
			if k < 0 {
				lg.Add("") // not measured in this mode: keeps the rows aligned
				continue
			}
			ln, pts, err := lineOf(plotter.XYs{{}}, styles[k])
			if err != nil {
				return nil, err
			}
			lg.Add(series[k].name, ln, pts)
		}
		lg.Draw(draw.Crop(bottom, vg.Length(c)*colW, -vg.Length(len(cols)-1-c)*colW, 0, 0))
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ticks125 marks a log axis at 1, 2 and 5 times each power of ten (labelled
// when there are few decades, else at the powers only).
type ticks125 struct{}

func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	e0, e1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	var ts []plot.Tick
	for e := e0; e <= e1; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, float64(e))
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || e1-e0 <= 3 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}
