package main

// `dsx devices`' world: which job this process is a rank of, and each
// rank's host, GPUs and NCCL.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"dsx/dist"
)

// worldReport is the world in `dsx devices --json`.
type worldReport struct {
	Engine string `json:"engine"` // "local", or "mpi: Open MPI v4.1.4 (libmpi.so.40)"
	Why    string `json:"why"`
	Size   int    `json:"size"`
	// MPI, for a process alone: the library a launcher's ranks would load,
	// or why none would.
	MPI   string       `json:"mpi,omitempty"`
	Ranks []rankReport `json:"ranks"`
}

// rankReport is one rank of the world.
type rankReport struct {
	Rank      int    `json:"rank"`
	Host      string `json:"host"`
	LocalRank int    `json:"local_rank"`
	LocalSize int    `json:"local_size"`
	GPUs      int    `json:"gpus"`
	// NCCL: the library the CUDA backend reduces dW and db with, or why
	// it would not.
	NCCL string `json:"nccl"`
}

// world joins the job (alone: Local) and gathers every rank's report to
// rank 0; on the other ranks it returns nil.
func worldOf(reps []backendReport, stderr io.Writer) (*worldReport, error) {
	w, err := joinWorld(stderr)
	if err != nil {
		return nil, err
	}
	defer w.end(nil)
	c := w.comm
	host, _ := os.Hostname()
	me := rankReport{Rank: c.Rank(), Host: host, LocalRank: c.LocalRank(), LocalSize: c.LocalSize(), NCCL: ncclStatus()}
	for _, r := range reps {
		if r.Name == "cuda" && r.Available {
			me.GPUs = len(r.Devices)
		}
	}
	mine, _ := json.Marshal(me)
	all, err := gather(c, mine)
	if err != nil || c.Rank() != 0 {
		return nil, err
	}
	wr := &worldReport{Engine: c.Engine(), Why: w.why, Size: c.Size()}
	if l, ok := launched(); ok && c.Size() > 1 {
		wr.Why = fmt.Sprintf("started by %s (%s)", l.Name, l.Vars)
	}
	if c.Size() == 1 {
		if lib, err := dist.FindMPI(os.Getenv(dist.EnvMPILib)); err != nil {
			wr.MPI = err.Error()
		} else {
			wr.MPI = lib + " loads; start dsx with mpirun, mpiexec or srun to use it"
		}
	}
	for _, b := range all {
		var r rankReport
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, err
		}
		wr.Ranks = append(wr.Ranks, r)
	}
	return wr, nil
}

// gather returns every rank's b, in rank order, on every rank: each rank
// broadcasts its length and bytes in turn (P small broadcasts: for
// reports, not data).
func gather(c dist.Comm, b []byte) ([][]byte, error) {
	out := make([][]byte, c.Size())
	for r := range c.Size() {
		n := binary.LittleEndian.AppendUint64(nil, uint64(len(b)))
		if err := c.Broadcast(n, r); err != nil {
			return nil, err
		}
		buf := make([]byte, binary.LittleEndian.Uint64(n))
		if r == c.Rank() {
			copy(buf, b)
		}
		if err := c.Broadcast(buf, r); err != nil {
			return nil, err
		}
		out[r] = buf
	}
	return out, nil
}

func printWorld(w io.Writer, wr *worldReport) {
	if wr.Size == 1 {
		fmt.Fprintf(w, "world one process: %s\n", wr.Why)
	} else {
		fmt.Fprintf(w, "world %d ranks over %s, %s\n", wr.Size, wr.Engine, wr.Why)
	}
	if wr.MPI != "" {
		fmt.Fprintf(w, "      MPI: %s\n", wr.MPI)
	}
	for _, r := range wr.Ranks {
		fmt.Fprintf(w, "      rank %d: %s, local rank %d of %d, %d GPUs, NCCL: %s\n", r.Rank, r.Host, r.LocalRank, r.LocalSize, r.GPUs, r.NCCL)
	}
}
