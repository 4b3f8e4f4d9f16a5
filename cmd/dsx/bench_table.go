package main

import "fmt"

// benchColumns are the table's optional columns, in order; a column every
// row leaves empty (the GPU's floor and memory on a CPU run) is left out.
var benchColumns = []struct {
	name  string
	width int
}{{"storage", 7}, {"inputs", 6}, {"grads", 5}, {"%floor", 7}, {"extra MiB", 10}, {"chunk", 10}, {"×eager", 8},
	{"ranks", 5}, {"allred ms", 9}, {"allred MiB", 10}}

func usedColumns(recs []benchRecord) []bool {
	used := make([]bool, len(benchColumns))
	for _, r := range recs {
		for i, v := range rowValues(r) {
			used[i] = used[i] || v != "-"
		}
	}
	return used
}

func rowHeader(cols []bool) string {
	h := fmt.Sprintf("%-18s %-6s %-14s %-5s %10s %9s", "B×N×T", "device", "variant", "mode", "ms/step", "GFLOP/s")
	for i, c := range benchColumns {
		if cols[i] {
			h += fmt.Sprintf(" %*s", c.width, c.name)
		}
	}
	return h + " note"
}

// rowValues are a row's optional columns.
func rowValues(r benchRecord) []string {
	opt := func(v float64, f string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	str := func(v, def string) string {
		if v == "" || v == def {
			return "-"
		}
		return v
	}
	return []string{str(r.Storage, "fp32"), str(r.Inputs, ""), str(r.Grads, "W,b"),
		opt(r.PctFloor, "%.1f"), opt(float64(r.ExtraBytes)/(1<<20), "%.1f"), opt(float64(r.ChunkRows), "%.0f"), opt(r.VsEager, "%.3f"),
		opt(float64(r.Ranks), "%.0f"), opt(r.AllReduceMs, "%.3f"), opt(float64(r.AllReduceBytes)/(1<<20), "%.2f")}
}

func rowLine(r benchRecord, cols []bool) string {
	opt := func(v float64, f string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	note := r.Skipped
	if r.Checked {
		note = fmt.Sprintf("Δloss %.2g ΔdW %.2g Δdb %.2g", r.LossDiff, r.DWDiff, r.DBDiff)
		if r.Grads == "W,b,x" {
			note += fmt.Sprintf(" Δdx %.2g", r.DXDiff)
		}
	}
	if r.Peer != "" {
		note = r.Peer + " " + note
	}
	mode := r.Mode
	if mode == "" {
		mode = "fp32"
	}
	line := fmt.Sprintf("%-18s %-6s %-14s %-5s %10s %9s", fmt.Sprintf("%d×%d×%d", r.B, r.N, r.T), r.Device, r.Variant, mode,
		opt(r.MsPerStep, "%.3f"), opt(r.GFlops, "%.0f"))
	for i, v := range rowValues(r) {
		if cols[i] {
			line += fmt.Sprintf(" %*s", benchColumns[i].width, v)
		}
	}
	return line + " " + note
}

// benchKey is what rows must share to be compared: device, shape and the
// step's setting (precision, gradients, inputs, loss options).
type benchKey struct {
	dev, setting string
	s            shape
}

// setting names a row's precision, gradients, inputs and loss options;
// old records' empty fields read as their defaults.
func (r benchRecord) setting() string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	s := fmt.Sprintf("%s/%s/%s/%s", or(r.Mode, "fp32"), or(r.Storage, "fp32"), or(r.Grads, "W,b"), or(r.Inputs, "random"))
	if r.Softcap != 0 || r.ZLoss != 0 {
		s += fmt.Sprintf("/cap%g/z%g", r.Softcap, r.ZLoss)
	}
	return s
}

// relate fills each row's ratio to torch-eager on the same device, shape and
// setting, and the peers' percent of the floor measured by dsx for them (the
// floor of its fused, chunked or tiled row: the same products).
func relate(recs []benchRecord) {
	type key = benchKey
	k := func(r benchRecord) key { return key{r.Device, r.setting(), shape{r.B, r.N, r.T}} }
	eager, floor, best := map[key]float64{}, map[key]float64{}, map[key]int{}
	floorRank := map[string]int{"fused": 3, "chunked": 2, "tiled": 1}
	for _, r := range recs {
		if r.Variant == "torch-eager" && r.MsPerStep > 0 {
			eager[k(r)] = r.MsPerStep
		}
		// The fused row's floor first: the products of the step, once each.
		if rank := floorRank[r.Variant]; rank > 0 && r.FloorMs > 0 && rank > best[k(r)] {
			floor[k(r)], best[k(r)] = r.FloorMs, rank
		}
	}
	for i := range recs {
		r := &recs[i]
		if e := eager[k(*r)]; e > 0 && r.MsPerStep > 0 {
			r.VsEager = r.MsPerStep / e
		}
		if f := floor[k(*r)]; r.Peer != "" && f > 0 && r.MsPerStep > 0 {
			r.FloorMs, r.PctFloor = f, 100*f/r.MsPerStep
		}
	}
}
