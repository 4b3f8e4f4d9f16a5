package atomicfile

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// version is the content of save number i: i, 2 MiB of byte(i), i again,
// so that a partial or mixed file is told from a complete one.
func version(i uint64) []byte {
	b := binary.LittleEndian.AppendUint64(nil, i)
	b = append(b, bytes.Repeat([]byte{byte(i)}, 2<<20)...)
	return binary.LittleEndian.AppendUint64(b, i)
}

// complete reports whether b is some version, and which.
func complete(b []byte) (uint64, bool) {
	if len(b) != 16+2<<20 {
		return 0, false
	}
	i := binary.LittleEndian.Uint64(b)
	if binary.LittleEndian.Uint64(b[len(b)-8:]) != i {
		return 0, false
	}
	for _, c := range b[8 : len(b)-8] {
		if c != byte(i) {
			return 0, false
		}
	}
	return i, true
}

// TestKillHelper is the process that TestKilledMidSave kills: it saves
// version after version of the file in $DSX_ATOMICFILE_CHILD until killed,
// printing "saved I" after save I returns, so that the parent follows its
// progress rather than the clock.
func TestKillHelper(t *testing.T) {
	path := os.Getenv("DSX_ATOMICFILE_CHILD")
	if path == "" {
		t.Skip("the child of TestKilledMidSave")
	}
	useTmpfile = os.Getenv("DSX_ATOMICFILE_NAMED") == ""
	fmt.Println("saving")
	for i := uint64(1); ; i++ {
		b := version(i)
		if err := Write(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Printf("saved %d\n", i)
	}
}

// TestKilledMidSave kills a process that saves in a loop with SIGKILL at
// random moments, many times: each time the file must hold a complete
// version, and no temporary file may stay behind once the next Write has
// run. With O_TMPFILE a kill leaves a temporary name only between the
// link and the rename; the named fallback leaves one on most kills, and
// the next Write removes them.
//
// The kills follow the child's progress, not the clock: each waits for
// the child to report 0, 1 or 2 completed saves (so at least a third of
// the kills come after a save finished, however busy the machine), then
// lets a random 0–30 ms pass, which lands the kill somewhere in the next
// save, or between saves: where it lands varies with the load, but no
// assertion depends on it.
func TestKilledMidSave(t *testing.T) {
	kills := 100
	if testing.Short() {
		kills = 20
	}
	for _, mode := range []string{"tmpfile", "named"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			old := version(0)
			if err := Write(path, func(w io.Writer) error { _, err := w.Write(old); return err }); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 9))
			strays, advanced := 0, 0
			last := uint64(0)
			for k := 0; k < kills; k++ {
				cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "DSX_ATOMICFILE_CHILD="+path)
				if mode == "named" {
					cmd.Env = append(cmd.Env, "DSX_ATOMICFILE_NAMED=1")
				}
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				lines := bufio.NewScanner(out)
				if !lines.Scan() || lines.Text() != "saving" {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("child did not start saving: %q %v", lines.Text(), lines.Err())
				}
				saves := rng.IntN(3)
				for s := 1; s <= saves; s++ {
					if !lines.Scan() || lines.Text() != fmt.Sprintf("saved %d", s) {
						cmd.Process.Kill()
						cmd.Wait()
						t.Fatalf("kill %d: waiting for save %d, the child wrote %q (%v)", k, s, lines.Text(), lines.Err())
					}
				}
				time.Sleep(time.Duration(rng.IntN(30000)) * time.Microsecond)
				cmd.Process.Kill() // SIGKILL
				cmd.Wait()
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("kill %d: %v", k, err)
				}
				v, ok := complete(b)
				if !ok {
					t.Fatalf("kill %d: the file holds %d bytes that are no complete version", k, len(b))
				}
				if saves > 0 && v < uint64(saves) {
					t.Fatalf("kill %d: the child reported save %d done, the file holds version %d", k, saves, v)
				}
				if v != last {
					advanced++
					last = v
				}
				es, _ := os.ReadDir(dir)
				strays += len(es) - 1
				// A file of a killed process's temporary name is what the
				// next Write must remove; run one now and then.
				if k%10 == 9 {
					nv := version(1000 + uint64(k))
					if err := Write(path, func(w io.Writer) error { _, err := w.Write(nv); return err }); err != nil {
						t.Fatal(err)
					}
					last = 1000 + uint64(k)
					if n := names(t, dir); len(n) != 1 {
						t.Fatalf("after a Write following kill %d: directory holds %v, want only the file", k, n)
					}
				}
			}
			t.Logf("%s: %d kills, %d left the file at a newer version, %d temporary files seen right after a kill (summed)", mode, kills, advanced, strays)
			if advanced == 0 {
				t.Errorf("no kill came after a completed save: the test never saw a save finish")
			}
			if mode == "tmpfile" && strays > kills/4 {
				t.Errorf("%d temporary files after %d kills: O_TMPFILE should leave one only between link and rename", strays, kills)
			}
		})
	}
}
