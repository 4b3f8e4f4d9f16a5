package dist

import (
	"fmt"
	"strconv"
	"strings"

	"dsx/internal/quote"
)

// Launcher is what the program that started this process (mpirun,
// mpiexec, srun) told it through its environment: its place in the job.
type Launcher struct {
	// Name names the launcher ("Open MPI's mpirun", "MPICH's Hydra
	// (mpiexec)", "Slurm's srun") and Vars the variables it was read from.
	Name, Vars string
	Rank, Size int
	// LocalRank and LocalSize are the rank among the processes on this
	// host and their number, -1 where the launcher does not say (the engine
	// then asks the library).
	LocalRank, LocalSize int
	// Family is the MPI whose launcher this is ("Open MPI", "MPICH"), or ""
	// for a resource manager that starts any MPI (Slurm): the library of
	// that family is tried first.
	Family string
}

func (l Launcher) String() string {
	return fmt.Sprintf("rank %d of %d, started by %s (%s)", l.Rank, l.Size, l.Name, l.Vars)
}

// launchers are the environments known, nearest launcher first: mpirun run
// inside a Slurm allocation sets its own variables beside Slurm's, and its
// are the ones that describe this process.
var launchers = []struct {
	name, family             string
	rank, size, local, lsize string
}{
	{"Open MPI's mpirun", "Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"},
	// Hydra (MPICH, MVAPICH, Intel MPI) and other PMI-1/2 launchers.
	{"MPICH's Hydra (mpiexec)", "MPICH", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
	// srun sets SLURM_STEP_NUM_TASKS for the tasks of a job step; a batch
	// script (which is no task of a step) has SLURM_PROCID and SLURM_NTASKS
	// but not it, so a process started by the script alone stays alone.
	{"Slurm's srun", "", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", ""},
}

// DetectLauncher reads the environment through getenv (os.Getenv) for a
// launcher; ok is false when none started this process. A launcher's
// variables that are present but malformed (a rank outside its size) are an
// error naming them.
func DetectLauncher(getenv func(string) string) (l Launcher, ok bool, err error) {
	for _, k := range launchers {
		rs, ss := getenv(k.rank), getenv(k.size)
		if rs == "" || ss == "" {
			continue
		}
		l = Launcher{Name: k.name, Family: k.family, LocalRank: -1, LocalSize: -1}
		vars := []string{k.rank, k.size}
		if l.Rank, err = envInt(k.rank, rs); err != nil {
			return Launcher{}, false, err
		}
		if l.Size, err = envInt(k.size, ss); err != nil {
			return Launcher{}, false, err
		}
		if l.Size < 1 || l.Rank < 0 || l.Rank >= l.Size {
			return Launcher{}, false, fmt.Errorf("dist: %s=%d and %s=%d from %s: want 0 ≤ rank < size", k.rank, l.Rank, k.size, l.Size, k.name)
		}
		for _, v := range []struct {
			name string
			into *int
		}{{k.local, &l.LocalRank}, {k.lsize, &l.LocalSize}} {
			if v.name == "" || getenv(v.name) == "" {
				continue
			}
			if *v.into, err = envInt(v.name, getenv(v.name)); err != nil {
				return Launcher{}, false, err
			}
			vars = append(vars, v.name)
		}
		l.Vars = strings.Join(vars, ", ")
		return l, true, nil
	}
	return Launcher{}, false, nil
}

func envInt(name, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("dist: %s=%s from the launcher: want a number ≥ 0", name, quote.Value(v))
	}
	return n, nil
}
