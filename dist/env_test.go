package dist

import (
	"strings"
	"testing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDetectLauncher(t *testing.T) {
	for _, c := range []struct {
		name       string
		env        func(string) string
		ok         bool
		launcher   string
		rank, size int
		local      int
		err        string
	}{
		{name: "alone", env: env()},
		{name: "mpirun", env: env("OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "3", "OMPI_COMM_WORLD_LOCAL_RANK", "1", "OMPI_COMM_WORLD_LOCAL_SIZE", "3"),
			ok: true, launcher: "Open MPI's mpirun", rank: 1, size: 3, local: 1},
		{name: "hydra", env: env("PMI_RANK", "2", "PMI_SIZE", "4", "MPI_LOCALRANKID", "0"), ok: true, launcher: "MPICH's Hydra (mpiexec)", rank: 2, size: 4, local: 0},
		{name: "srun", env: env("SLURM_PROCID", "5", "SLURM_STEP_NUM_TASKS", "8", "SLURM_NTASKS", "8", "SLURM_LOCALID", "1"), ok: true, launcher: "Slurm's srun", rank: 5, size: 8, local: 1},
		// A batch script: Slurm's job variables, but no step of tasks.
		{name: "sbatch script", env: env("SLURM_PROCID", "0", "SLURM_NTASKS", "8", "SLURM_JOB_ID", "12")},
		// mpirun inside an allocation: mpirun's variables describe the process.
		{name: "mpirun under srun", env: env("SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "1", "OMPI_COMM_WORLD_RANK", "3", "OMPI_COMM_WORLD_SIZE", "4"),
			ok: true, launcher: "Open MPI's mpirun", rank: 3, size: 4, local: -1},
		{name: "rank beyond size", env: env("PMI_RANK", "4", "PMI_SIZE", "4"), err: "want 0 ≤ rank < size"},
		{name: "not a number", env: env("OMPI_COMM_WORLD_RANK", "one", "OMPI_COMM_WORLD_SIZE", "2"), err: `OMPI_COMM_WORLD_RANK="one"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, ok, err := DetectLauncher(c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || ok != c.ok {
				t.Fatalf("ok %v, err %v; want ok %v", ok, err, c.ok)
			}
			if ok && (l.Name != c.launcher || l.Rank != c.rank || l.Size != c.size || l.LocalRank != c.local) {
				t.Fatalf("%+v, want %s rank %d of %d local %d", l, c.launcher, c.rank, c.size, c.local)
			}
		})
	}
}

func TestFromEnvAlone(t *testing.T) {
	for _, c := range []struct {
		env  func(string) string
		why  string
		err  string
		comm bool
	}{
		{env: env(), why: "one process (no launcher in the environment)", comm: true},
		{env: env(EnvDist, "auto"), why: "one process (no launcher", comm: true},
		{env: env(EnvDist, "off", "PMI_RANK", "0", "PMI_SIZE", "2"), why: "DSX_DIST=off: this rank 0 of 2", comm: true},
		{env: env("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "1"), why: "one process (rank 0 of 1", comm: true},
		{env: env(EnvDist, "mpi"), err: "DSX_DIST=mpi, but no launcher started this process"},
		{env: env(EnvDist, "gloo"), err: `DSX_DIST="gloo": want auto, off or mpi`},
		{env: env("PMI_RANK", "0", "PMI_SIZE", "2", EnvMPILib, "/nonexistent/libmpi.so"), err: "(PMI_RANK, PMI_SIZE), but no MPI library loads (/nonexistent/libmpi.so"},
	} {
		c0, why, err := fromEnv(c.env)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("err %v, want one containing %q", err, c.err)
		case c.err == "" && (err != nil || !strings.Contains(why, c.why)):
			t.Errorf("why %q, err %v; want %q", why, err, c.why)
		case c.comm && (c0 == nil || c0.Size() != 1):
			t.Errorf("comm %v, want Local", c0)
		}
	}
}

func TestVersionLine(t *testing.T) {
	for in, want := range map[string]string{
		"Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022\x00": "Open MPI v4.1.4",
		"MPICH Version:\t4.0.2\nMPICH Release date:\tThu Apr  7 12:34:45 CDT 2022\n":                 "MPICH 4.0.2",
	} {
		if got := versionLine(in); got != want {
			t.Errorf("versionLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeerError(t *testing.T) {
	if err := FailedRanks([]float64{0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	err := FailedRanks([]float64{0, 1, 0, 1})
	if err == nil || err.Error() != "dist: ranks 1, 3 of 4 failed this step (the error is reported there)" {
		t.Fatalf("%v", err)
	}
}
