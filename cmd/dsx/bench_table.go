package main

import "fmt"

// benchColumns are the table's optional columns, in order; a column every
// row leaves empty (the GPU's floor and memory on a CPU run) is left out.
var benchColumns = []struct {
	name  string
	width int
}{{"%floor", 7}, {"extra MiB", 10}, {"chunk", 10}, {"×eager", 8}}

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
	return []string{opt(r.PctFloor, "%.1f"), opt(float64(r.ExtraBytes)/(1<<20), "%.1f"), opt(float64(r.ChunkRows), "%.0f"), opt(r.VsEager, "%.3f")}
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
	}
	if r.Peer != "" {
		note = r.Peer
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

// relate fills each row's ratio to torch-eager on the same device, shape and
// mode, and the peers' percent of the floor measured by dsx for that shape
// and mode.
func relate(recs []benchRecord) {
	type key struct {
		dev, mode string
		s         shape
	}
	k := func(r benchRecord) key {
		m := r.Mode
		if m == "" {
			m = "fp32"
		}
		return key{r.Device, m, shape{r.B, r.N, r.T}}
	}
	eager, floor := map[key]float64{}, map[key]float64{}
	for _, r := range recs {
		if r.Variant == "torch-eager" && r.MsPerStep > 0 {
			eager[k(r)] = r.MsPerStep
		}
		if r.Variant == "fused" && r.FloorMs > 0 {
			floor[k(r)] = r.FloorMs
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
