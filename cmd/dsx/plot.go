package main

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"dsx/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws `dsx bench --plot` with gonum.org/v1/plot, as what a
// reader compares: one panel per shape (B×N×T, in the order measured), in
// it a bar per implementation (dsx's variants, then the peers), grouped by
// setting (matmul mode, storage, inputs) when the rows span several. Each
// panel has its own linear axis from 0, so the bars of one shape compare by
// length whatever the other shapes' sizes, and every bar is labelled with
// its value (and its ratio to PyTorch eager's in the same setting, where
// eager was measured). A second row of panels shows the extra device
// memory, only when some row measured it (the CPU's do not). The PNG is
// written atomically.
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

// plotCell is one bar's place: shape, group (setting) and implementation,
// as indices into plotData's lists.
type plotCell struct{ shape, group, impl int }

// plotData is what the plot draws, from the measured rows.
type plotData struct {
	device string   // the one device of every row; "" when they span several (impls then name theirs)
	shapes []string // panel titles, in the order measured
	groups []string // settings: fp32, tf32, bf16, bf16 storage, ... ("lm" for LM-like inputs)
	impls  []string // bar colours: dsx's variants, then the peers
	colors []color.RGBA
	time   map[plotCell]float64
	mem    map[plotCell]float64 // MiB; only rows that measured it
	ratio  map[plotCell]float64 // time ÷ torch-eager's, where eager ran the same setting
}

// plotPeers are the implementations that are not dsx's.
var plotPeers = []string{"torch-eager", "torch-compile", "cce", "liger-flce"}

// collectPlot groups the measured rows (skipped ones and those without a
// time are left out) by shape, setting and implementation.
func collectPlot(recs []benchRecord) plotData {
	recs = slices.Clone(recs)
	relate(recs) // VsEager, on a copy
	var rows []benchRecord
	devices, grads, losses := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if r.Skipped == "" && r.MsPerStep > 0 {
			rows = append(rows, r)
			devices[r.Device] = true
			grads[r.Grads] = true
			losses[fmt.Sprint(r.Softcap, r.ZLoss)] = true
		}
	}
	d := plotData{time: map[plotCell]float64{}, mem: map[plotCell]float64{}, ratio: map[plotCell]float64{}}
	if len(devices) == 1 {
		d.device = rows[0].Device
	}
	// A group names what sets its rows apart: the precision and inputs
	// always, the gradients and loss options only where the rows differ.
	group := func(r benchRecord) string {
		g := r.Mode
		switch {
		case r.Storage == "bf16":
			g = "bf16 storage"
		case g == "":
			g = "fp32"
		}
		if r.Inputs == "lm" {
			g += " lm"
		}
		if len(grads) > 1 && r.Grads == "W,b,x" {
			g += " +dx"
		}
		if len(losses) > 1 && (r.Softcap != 0 || r.ZLoss != 0) {
			g += fmt.Sprintf(" cap %g z %g", r.Softcap, r.ZLoss)
		}
		return g
	}
	impl := func(r benchRecord) string {
		if d.device == "" {
			return r.Device + " " + r.Variant
		}
		return r.Variant
	}
	index := func(list *[]string, s string) int {
		if i := slices.Index(*list, s); i >= 0 {
			return i
		}
		*list = append(*list, s)
		return len(*list) - 1
	}
	// Groups and implementations in a fixed order, whatever the rows'.
	var groups, impls []string
	for _, r := range rows {
		index(&groups, group(r))
		index(&impls, impl(r))
	}
	rank := map[string]int{"fp32": 0, "tf32": 1, "bf16": 2, "bf16 storage": 3}
	groupRank := func(g string) int {
		base, _, _ := strings.Cut(g, " lm")
		if r, ok := rank[base]; ok {
			return r
		}
		return len(rank)
	}
	sort.SliceStable(groups, func(i, j int) bool { return groupRank(groups[i]) < groupRank(groups[j]) })
	// dsx's variants (the CPU's graph, the GPU's fused, then the others),
	// then the peers, in their order; a variant dsx does not know yet
	// after those it does, alphabetically.
	order := append([]string{"graph", "fused", "chunked", "tiled", "unfused"}, plotPeers...)
	rankOf := func(s string) int {
		if i := slices.Index(order, s[strings.LastIndexByte(s, ' ')+1:]); i >= 0 {
			if i >= 5 {
				return i + 1 // a peer
			}
			return i
		}
		return 5
	}
	sort.SliceStable(impls, func(i, j int) bool {
		if ri, rj := rankOf(impls[i]), rankOf(impls[j]); ri != rj {
			return ri < rj
		}
		return impls[i] < impls[j]
	})
	d.groups, d.impls, d.colors = groups, impls, plotColors(impls)
	for _, r := range rows {
		c := plotCell{index(&d.shapes, fmt.Sprintf("%d×%d×%d", r.B, r.N, r.T)), slices.Index(groups, group(r)), slices.Index(impls, impl(r))}
		d.time[c] = r.MsPerStep
		if r.ExtraBytes > 0 {
			d.mem[c] = float64(r.ExtraBytes) / (1 << 20)
		}
		if r.VsEager > 0 && r.Variant != "torch-eager" {
			d.ratio[c] = r.VsEager
		}
	}
	return d
}

// plotPalette is Tableau's ten colours (distinct in print and to most
// colour-blind readers), one per implementation.
var plotPalette = []color.RGBA{
	{0x4e, 0x79, 0xa7, 255}, {0xf2, 0x8e, 0x2b, 255}, {0xe1, 0x57, 0x59, 255}, {0x76, 0xb7, 0xb2, 255},
	{0x59, 0xa1, 0x4f, 255}, {0xed, 0xc9, 0x48, 255}, {0xb0, 0x7a, 0xa1, 255}, {0xff, 0x9d, 0xa7, 255},
	{0x9c, 0x75, 0x5f, 255}, {0xba, 0xb0, 0xac, 255},
}

// plotColors are the implementations' colours: the same colour for an
// implementation in every plot (dsx's fused or graph blue, chunked orange,
// PyTorch eager red, ...), the others taking the free colours in turn; no
// two implementations of one plot share a colour.
func plotColors(impls []string) []color.RGBA {
	fixed := map[string]int{"fused": 0, "graph": 0, "chunked": 1, "torch-eager": 2, "unfused": 3, "tiled": 4,
		"torch-compile": 6, "liger-flce": 7, "cce": 8}
	used := map[int]bool{}
	slot := make([]int, len(impls))
	for k, name := range impls {
		slot[k] = -1
		if i, ok := fixed[name[strings.LastIndexByte(name, ' ')+1:]]; ok && !used[i] {
			slot[k], used[i] = i, true
		}
	}
	next := 0
	out := make([]color.RGBA, len(impls))
	for k := range impls {
		if slot[k] < 0 {
			for used[next] {
				next++
			}
			slot[k], used[next] = next, true
		}
		out[k] = implColor(slot[k])
	}
	return out
}

// implColor is colour i: the palette's, and beyond ten the same hues
// darker, one shade per round of ten.
func implColor(i int) color.RGBA {
	c := plotPalette[i%len(plotPalette)]
	f := math.Pow(0.7, float64(i/len(plotPalette)))
	return color.RGBA{uint8(float64(c.R) * f), uint8(float64(c.G) * f), uint8(float64(c.B) * f), 255}
}

// plotNumber formats a bar's value with three significant digits, never
// in exponent form: 0.0731, 2.97, 84.5, 336, 10084.
func plotNumber(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// The figure's layout.
const (
	panelW   = 9.5 * vg.Centimeter
	panelH   = 7.5 * vg.Centimeter
	titleH   = 1.2 * vg.Centimeter
	legendRH = 0.55 * vg.Centimeter // a row of the legend
	legendW  = 4.5 * vg.Centimeter  // a column of the legend
	margin   = 0.4 * vg.Centimeter
)

// plotPNG renders the panels (a row of time per shape, then one of memory
// when measured, wrapped at three shapes a row), a title and a legend.
func plotPNG(recs []benchRecord) ([]byte, error) {
	d := collectPlot(recs)
	if len(d.shapes) == 0 {
		return nil, fmt.Errorf("no measured rows to draw")
	}
	cols, perQuantity, quantities := d.layout()
	title := "time per training step"
	if len(quantities) == 2 {
		title += " (top) and extra device memory (bottom)"
	}
	title += ", lower is better"
	if d.device != "" {
		title = "dsx bench on " + d.device + ": " + title
	}
	ts := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, vg.Points(13)), XAlign: text.XCenter, YAlign: text.YTop, Handler: plot.DefaultTextHandler}
	// The figure is as wide as its panels, or its title where that is wider.
	W := max(vg.Length(cols)*panelW, ts.Width(title)) + 2*margin
	legendCols := max(1, min(len(d.impls), int((W-2*margin)/legendW)))
	legendRows := (len(d.impls) + legendCols - 1) / legendCols
	panelsH := vg.Length(perQuantity*len(quantities)) * panelH
	H := titleH + panelsH + vg.Length(legendRows)*legendRH + 2*margin
	img := vgimg.New(W, H)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	dc.FillText(ts, vg.Point{X: W / 2, Y: H - margin}, title)

	for q, quantity := range quantities {
		for s := range d.shapes {
			pl, err := d.panel(s, quantity, s%cols == 0)
			if err != nil {
				return nil, err
			}
			if pl == nil {
				continue // nothing measured: a blank, not an empty panel
			}
			row := q*perQuantity + s/cols
			x0 := (W-vg.Length(cols)*panelW)/2 + vg.Length(s%cols)*panelW
			y1 := H - margin - titleH - vg.Length(row)*panelH
			// A gap under each panel keeps its tick labels off the title below.
			pl.Draw(draw.Canvas{Canvas: dc, Rectangle: vg.Rectangle{Min: vg.Point{X: x0, Y: y1 - panelH + margin}, Max: vg.Point{X: x0 + panelW - margin/2, Y: y1}}})
		}
	}

	// The legend: a swatch and a name per implementation, in rows under
	// the panels.
	lf := font.From(plot.DefaultFont, vg.Points(10))
	for i, name := range d.impls {
		x := margin + vg.Length(i%legendCols)*legendW
		y := margin + vg.Length(legendRows-1-i/legendCols)*legendRH
		dc.SetColor(d.colors[i])
		sw := vg.Points(10)
		dc.Fill(vg.Rectangle{Min: vg.Point{X: x, Y: y}, Max: vg.Point{X: x + sw, Y: y + sw}}.Path())
		dc.FillText(text.Style{Color: color.Black, Font: lf, YAlign: text.YBottom, Handler: plot.DefaultTextHandler},
			vg.Point{X: x + sw + vg.Points(4), Y: y}, name)
	}

	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// layout is the grid of panels: cols panels a row, rows rows of them per
// quantity, the quantities ("time", and "mem" only when a row measured
// memory: no empty panel).
func (d *plotData) layout() (cols, rows int, quantities []string) {
	cols = min(len(d.shapes), 3)
	rows = (len(d.shapes) + cols - 1) / cols
	quantities = []string{"time"}
	if len(d.mem) > 0 {
		quantities = append(quantities, "mem")
	}
	return cols, rows, quantities
}

// panel draws shape s's bars of one quantity ("time" or "mem"): a cluster
// per group, a bar per implementation measured in it, each labelled with
// its value; nil when none was measured.
func (d *plotData) panel(s int, quantity string, first bool) (*plot.Plot, error) {
	vals := d.time
	unit := "ms per step"
	if quantity == "mem" {
		vals, unit = d.mem, "extra MiB"
	}
	pl := plot.New()
	pl.Title.Text = d.shapes[s]
	pl.Title.TextStyle.Font.Size = vg.Points(11)
	if first {
		pl.Y.Label.Text = unit
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // groups are categories: no line through them
	pl.Add(grid)
	pl.Y.Tick.Marker = linearTicks{}
	// The bars of each group, side by side; the groups at 0, 1, ...
	type bar struct {
		g, i int
		v    float64
	}
	var bars [][]bar // per group
	top, count := 0.0, 0
	for g := range d.groups {
		var gb []bar
		for i := range d.impls {
			if v, ok := vals[plotCell{s, g, i}]; ok && v > 0 {
				gb = append(gb, bar{g, i, v})
				top = max(top, v)
			}
		}
		bars = append(bars, gb)
		count += len(gb)
	}
	if count == 0 {
		return nil, nil
	}
	// Groups without a bar in this panel are left out of its axis.
	var names []string
	x := 0.0
	const span = 0.8    // of the unit between groups that a group's bars fill
	rotate := count > 4 // labels of more bars would overlap upright
	for g, gb := range bars {
		if len(gb) == 0 {
			continue
		}
		names = append(names, d.groups[g])
		w := min(span/float64(len(gb)), 0.3) // a lone bar stays a bar, not a block
		var xys plotter.XYs
		var labels []string
		for k, b := range gb {
			x0 := x - w*float64(len(gb))/2 + float64(k)*w
			poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x0 + w*0.92, Y: 0}, {X: x0 + w*0.92, Y: b.v}, {X: x0, Y: b.v}})
			if err != nil {
				return nil, err
			}
			poly.Color, poly.LineStyle.Width = d.colors[b.i], 0
			pl.Add(poly)
			label := plotNumber(b.v)
			if r, ok := d.ratio[plotCell{s, b.g, b.i}]; ok && quantity == "time" {
				label += fmt.Sprintf(" (%.2f×)", r)
			}
			xys = append(xys, plotter.XY{X: x0 + w*0.46, Y: b.v})
			labels = append(labels, label)
		}
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
		if err != nil {
			return nil, err
		}
		for k := range lb.TextStyle {
			st := &lb.TextStyle[k]
			st.Font.Size = vg.Points(8)
			st.XAlign, st.YAlign = text.XCenter, text.YBottom
			if rotate { // upright text would overlap its neighbours'
				st.Rotation, st.XAlign, st.YAlign = math.Pi/2, text.XLeft, text.YCenter
			}
		}
		lb.Offset = vg.Point{Y: vg.Points(2)}
		pl.Add(lb)
		x++
	}
	pl.NominalX(names...)
	pl.X.Min, pl.X.Max = -0.5, float64(len(names))-0.5
	// Room above the tallest bar for its label: more when labels stand up.
	pl.Y.Min, pl.Y.Max = 0, top*1.15
	if rotate {
		pl.Y.Max = top * 1.45
	}
	return pl, nil
}

// linearTicks marks a linear axis from lo to hi at 1, 2, 2.5 or 5 times a
// power of ten, the step that gives four to eight labelled ticks, with
// unlabelled ticks between them.
type linearTicks struct{}

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	var step float64
	for e := math.Floor(math.Log10(hi-lo)) - 1; step == 0; e++ {
		for _, m := range []float64{1, 2, 2.5, 5} {
			if st := m * math.Pow(10, e); (hi-lo)/st <= 7 {
				step = st
				break
			}
		}
	}
	// Decimals enough for the step (2.5·10ᵉ needs one more than 10ᵉ).
	dec := max(0, int(-math.Floor(math.Log10(step)+1e-9)))
	if m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); math.Abs(m-2.5) < 1e-9 && step < 10 {
		dec++
	}
	var ts []plot.Tick
	for k := math.Ceil(lo / step * 2); k/2*step <= hi*(1+1e-9); k++ {
		v := k / 2 * step
		t := plot.Tick{Value: v}
		if int64(k)%2 == 0 {
			t.Label = strconv.FormatFloat(v, 'f', dec, 64)
		}
		ts = append(ts, t)
	}
	return ts
}
