package main

import (
	"archive/zip"
	"io"
	"time"

	"dsx/data"
)

// newNPYPred writes predictions as one .npy array: the predicted classes
// (rows,), the top-K classes (rows, K) or the probabilities (rows, T); the
// command line refuses --top with --proba for .npy.
func newNPYPred(w io.Writer, o *predOpts, rows int) (predWriter, error) {
	if o.proba {
		nw, err := data.NewNPYWriter[float32](w, []int{rows, o.T})
		return &npyProba{nw: nw, buf: make([]float32, o.T)}, err
	}
	shape := []int{rows}
	if o.top > 0 {
		shape = append(shape, o.top)
	}
	nw, err := data.NewNPYWriter[int64](w, shape)
	return &npyClasses{nw: nw, buf: make([]int64, max(o.top, 1))}, err
}

type npyClasses struct {
	nw  *data.NPYWriter[int64]
	buf []int64
}

func (n *npyClasses) row(_ int, _ int32, order []int, _ []float64) error {
	for j := range n.buf {
		n.buf[j] = int64(order[j])
	}
	return n.nw.Write(n.buf...)
}

func (n *npyClasses) close() error { return n.nw.Close() }

type npyProba struct {
	nw  *data.NPYWriter[float32]
	buf []float32
}

func (n *npyProba) row(_ int, _ int32, _ []int, p []float64) error {
	for c, v := range p {
		n.buf[c] = float32(v)
	}
	return n.nw.Write(n.buf...)
}

func (n *npyProba) close() error { return n.nw.Close() }

// npzPred writes an .npz archive, as np.savez does: a zip of stored
// (uncompressed) .npy members named after the arrays. Members follow each
// other in the archive, so "proba" (rows×T, the large one) streams as the
// first member while the per-row arrays (predicted, label, top, top_p:
// rows×(2K+2) values at most) are kept and written after it.
type npzPred struct {
	zw    *zip.Writer
	o     *predOpts
	rows  int
	proba *npyProba // nil without --proba
	pred  []int64
	label []int64
	top   []int64
	topP  []float32
}

func newNPZPred(w io.Writer, o *predOpts, rows int) (predWriter, error) {
	z := &npzPred{zw: zip.NewWriter(w), o: o, rows: rows, pred: make([]int64, 0, rows)}
	if o.labelled {
		z.label = make([]int64, 0, rows)
	}
	if o.top > 0 {
		z.top, z.topP = make([]int64, 0, rows*o.top), make([]float32, 0, rows*o.top)
	}
	if o.proba {
		m, err := z.member("proba")
		if err != nil {
			return nil, err
		}
		nw, err := data.NewNPYWriter[float32](m, []int{rows, o.T})
		if err != nil {
			return nil, err
		}
		z.proba = &npyProba{nw: nw, buf: make([]float32, o.T)}
	}
	return z, nil
}

// member starts the archive's member NAME.npy, stored as np.savez stores it.
func (z *npzPred) member(name string) (io.Writer, error) {
	return z.zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store, Modified: time.Unix(0, 0).UTC()})
}

func (z *npzPred) row(i int, label int32, order []int, p []float64) error {
	z.pred = append(z.pred, int64(order[0]))
	if z.label != nil {
		z.label = append(z.label, int64(label))
	}
	for _, k := range order[:z.o.top] {
		z.top = append(z.top, int64(k))
		z.topP = append(z.topP, float32(p[k]))
	}
	if z.proba != nil {
		return z.proba.row(i, label, order, p)
	}
	return nil
}

func (z *npzPred) close() error {
	if z.proba != nil {
		if err := z.proba.close(); err != nil {
			return err
		}
	}
	if err := writeMember(z, "predicted", []int{z.rows}, z.pred); err != nil {
		return err
	}
	if z.label != nil {
		if err := writeMember(z, "label", []int{z.rows}, z.label); err != nil {
			return err
		}
	}
	if z.top != nil {
		if err := writeMember(z, "top", []int{z.rows, z.o.top}, z.top); err != nil {
			return err
		}
		if err := writeMember(z, "top_p", []int{z.rows, z.o.top}, z.topP); err != nil {
			return err
		}
	}
	return z.zw.Close()
}

// writeMember writes one whole array as the member NAME.npy.
func writeMember[E int64 | float32](z *npzPred, name string, shape []int, v []E) error {
	m, err := z.member(name)
	if err != nil {
		return err
	}
	return data.WriteNPY(m, shape, v)
}
