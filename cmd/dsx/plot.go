package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writePlot draws `dsx bench --plot`: milliseconds per step (left) and extra
// device memory (right) against the benchmark's shapes (B×N×T, in the order
// given), log scale, one line per device/variant/mode; skipped rows are left
// out. Drawn with image/png and a built-in 5×7 font (no dependencies), and
// written atomically (temporary file, then rename).
func writePlot(path string, recs []benchRecord) error {
	type key struct{ dev, variant, mode string }
	var shapes []shape
	seen := map[shape]int{}
	series := map[key]map[int][2]float64{}
	var keys []key
	for _, r := range recs {
		if r.Skipped != "" || r.MsPerStep <= 0 {
			continue
		}
		s := shape{r.B, r.N, r.T}
		if _, ok := seen[s]; !ok {
			seen[s] = len(shapes)
			shapes = append(shapes, s)
		}
		m := r.Mode
		if m == "" {
			m = "fp32"
		}
		k := key{r.Device, r.Variant, m}
		if series[k] == nil {
			series[k] = map[int][2]float64{}
			keys = append(keys, k)
		}
		series[k][seen[s]] = [2]float64{r.MsPerStep, float64(r.ExtraBytes) / (1 << 20)}
	}
	if len(shapes) == 0 {
		return fmt.Errorf("--plot: no measured rows to draw")
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.dev+a.variant+a.mode < b.dev+b.variant+b.mode
	})
	const W, H, panelW, top, plotH = 1400, 640, 620, 40, 380
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	palette := []color.RGBA{{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255}, {148, 103, 189, 255},
		{140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}, {0, 0, 0, 255}, {255, 187, 120, 255}}
	gray := color.RGBA{200, 200, 200, 255}
	black := color.RGBA{0, 0, 0, 255}
	for p, title := range []string{"ms per step (log scale)", "extra device memory, MiB (log scale)"} {
		x0 := 70 + p*(panelW+70)
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, k := range keys {
			for _, v := range series[k] {
				if v[p] > 0 {
					lo, hi = math.Min(lo, v[p]), math.Max(hi, v[p])
				}
			}
		}
		drawText(img, x0, top-25, title, black, 2)
		if math.IsInf(lo, 1) {
			drawText(img, x0+20, top+plotH/2, "no data", black, 2)
			continue
		}
		l0, l1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if l1 == l0 {
			l1++
		}
		yOf := func(v float64) int { return top + plotH - int((math.Log10(v)-l0)/(l1-l0)*plotH) }
		xOf := func(i int) int {
			if len(shapes) == 1 {
				return x0 + panelW/2
			}
			return x0 + 40 + i*(panelW-80)/(len(shapes)-1)
		}
		for e := l0; e <= l1; e++ {
			y := yOf(math.Pow(10, e))
			line(img, x0, y, x0+panelW, y, gray)
			drawText(img, x0-60, y-7, trimFloat(math.Pow(10, e)), black, 2)
		}
		line(img, x0, top, x0, top+plotH, black)
		line(img, x0, top+plotH, x0+panelW, top+plotH, black)
		for i, s := range shapes {
			x := xOf(i)
			line(img, x, top+plotH, x, top+plotH+6, black)
			lbl := fmt.Sprintf("%dx%dx%d", s.B, s.N, s.T)
			lx := min(max(x-len(lbl)*6, x0-20), x0+panelW-len(lbl)*12)
			drawText(img, lx, top+plotH+12+(i%2)*18, lbl, black, 2)
		}
		for ki, k := range keys {
			c := palette[ki%len(palette)]
			px, py := -1, -1
			for i := range shapes {
				v, ok := series[k][i]
				if !ok || v[p] <= 0 {
					px = -1
					continue
				}
				x, y := xOf(i), yOf(v[p])
				for dx := -3; dx <= 3; dx++ {
					for dy := -3; dy <= 3; dy++ {
						img.SetRGBA(x+dx, y+dy, c)
					}
				}
				if px >= 0 {
					line(img, px, py, x, y, c)
				}
				px, py = x, y
			}
		}
	}
	drawText(img, 70, top+plotH+50, "B x N x T (batch, features, classes)", black, 2)
	for ki, k := range keys {
		c := palette[ki%len(palette)]
		x, y := 70+(ki%4)*330, top+plotH+85+(ki/4)*22
		for dx := 0; dx < 24; dx++ {
			for dy := -2; dy <= 2; dy++ {
				img.SetRGBA(x+dx, y+7+dy, c)
			}
		}
		drawText(img, x+32, y, k.dev+" "+k.variant+" "+k.mode, black, 2)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("--plot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("--plot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

func trimFloat(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}

func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	n := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= n; i++ {
		x := x0 + (x1-x0)*i/n
		y := y0 + (y1-y0)*i/n
		img.SetRGBA(x, y, c)
		img.SetRGBA(x, y+1, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// drawText writes s with the 5×7 font at scale px per dot (lower case is
// drawn as upper case; unknown characters as blanks).
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA, scale int) {
	for _, r := range strings.ToUpper(s) {
		g := font5x7[r]
		for row, bits := range g {
			for col, b := range bits {
				if b != '#' {
					continue
				}
				for dx := 0; dx < scale; dx++ {
					for dy := 0; dy < scale; dy++ {
						img.SetRGBA(x+col*scale+dx, y+row*scale+dy, c)
					}
				}
			}
		}
		x += 6 * scale
	}
}

var font5x7 = map[rune][7]string{
	'0': {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1': {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2': {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3': {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4': {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5': {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6': {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7': {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8': {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9': {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'A': {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B': {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C': {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D': {"###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."},
	'E': {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F': {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G': {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H': {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I': {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J': {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K': {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L': {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M': {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N': {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O': {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P': {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q': {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R': {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S': {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T': {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U': {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V': {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W': {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X': {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y': {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z': {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'.': {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	',': {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
	'-': {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'+': {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."},
	'/': {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'%': {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"},
	'(': {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."},
	')': {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."},
	':': {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	'=': {".....", ".....", "#####", ".....", "#####", ".....", "....."},
	'×': {".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "....."},
}
