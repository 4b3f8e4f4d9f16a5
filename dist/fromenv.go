package dist

import (
	"fmt"
	"os"
	"strings"

	"dsx/internal/quote"
)

// EnvDist chooses how a process takes part in a job: "" or "auto" (join the
// job when a launcher started this process as one of several ranks, else
// run alone), "mpi" (join it through MPI; no launcher is an error), or
// "off" (run alone even under a launcher: each rank trains by itself).
const EnvDist = "DSX_DIST"

// Engine joins the job that a launcher started: MPI's is JoinMPI. A third
// engine is one file that implements Comm and adds itself here from its
// init function.
type Engine struct {
	Name string
	Join func(l Launcher, getenv func(string) string) (Comm, error)
}

// Engines are the engines FromEnv knows, the default ("auto") first.
var Engines = []Engine{
	{Name: "mpi", Join: func(l Launcher, getenv func(string) string) (Comm, error) {
		return JoinMPI(l, getenv(EnvMPILib))
	}},
}

// FromEnv returns the communicator this process was started for (see
// EnvDist) and one line saying which and why. A process that no launcher
// started, or started as the only rank, gets Local and runs as it would
// without this package: no library is loaded. A process that must join a
// job but cannot (no launcher under DSX_DIST=mpi, no MPI library, a
// library of another MPI than the launcher's) gets an error that says so.
func FromEnv() (Comm, string, error) { return fromEnv(os.Getenv) }

func fromEnv(getenv func(string) string) (Comm, string, error) {
	choice := strings.TrimSpace(getenv(EnvDist))
	l, launched, err := DetectLauncher(getenv)
	if err != nil {
		return nil, "", err
	}
	var engine *Engine
	switch choice {
	case "", "auto":
		if !launched {
			return Local{}, "one process (no launcher in the environment)", nil
		}
		if l.Size == 1 {
			return Local{}, fmt.Sprintf("one process (%s)", l), nil
		}
		engine = &Engines[0]
	case "off":
		if launched && l.Size > 1 {
			return Local{}, fmt.Sprintf("one process (%s=off: this %s trains alone)", EnvDist, l), nil
		}
		return Local{}, fmt.Sprintf("one process (%s=off)", EnvDist), nil
	default:
		for i := range Engines {
			if Engines[i].Name == choice {
				engine = &Engines[i]
			}
		}
		if engine == nil {
			return nil, "", fmt.Errorf("dist: %s=%s: want auto, off or %s", EnvDist, quote.Value(choice), engineNames())
		}
		if !launched {
			return nil, "", fmt.Errorf("dist: %s=%s, but no launcher started this process (none of %s is set): start it with mpirun -np P, mpiexec or srun",
				EnvDist, choice, launcherVars())
		}
	}
	c, err := engine.Join(l, getenv)
	if err != nil {
		return nil, "", err
	}
	return c, fmt.Sprintf("%s; %s", l, c.Engine()), nil
}

func engineNames() string {
	var n []string
	for _, e := range Engines {
		n = append(n, e.Name)
	}
	return strings.Join(n, ", ")
}

func launcherVars() string {
	var v []string
	for _, k := range launchers {
		v = append(v, k.rank+"/"+k.size)
	}
	return strings.Join(v, ", ")
}
