package cudakernels

import (
	"reflect"
	"strconv"
	"testing"
)

// TestPTXEntries reads every .entry of the embedded PTX and checks it
// against Kernels: every kernel listed is an entry of its module's PTX, and
// every entry is listed; the entry has as many parameters as the argument
// struct has fields, in the same order, each 8 bytes wide and of the kind
// the field is (Ptr and int64: an integer type, float64: .f64). This is
// what a launch passes (TestSignatures checks the CUDA source; this, what
// nvcc made of it: PTX regenerated from a changed source shows here too).
func TestPTXEntries(t *testing.T) {
	listed := map[string]Kernel{}
	for _, k := range Kernels {
		listed[k.Name] = k
	}
	found := map[string]bool{}
	for _, m := range Modules {
		es, err := Entries(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			found[e.Name] = true
			k, ok := listed[e.Name]
			if !ok {
				t.Errorf("%s.ptx has entry %s, which Kernels does not list", m, e.Name)
				continue
			}
			if k.Module != m {
				t.Errorf("%s is an entry of %s.ptx; Kernels says module %s", e.Name, m, k.Module)
			}
			st := reflect.TypeOf(k.Args)
			if len(e.Params) != st.NumField() {
				t.Errorf("%s: %d parameters in the PTX, %d fields in %v", e.Name, len(e.Params), st.NumField(), st)
				continue
			}
			for i, p := range e.Params {
				f := st.Field(i)
				if ParamBytes(p) != 8 || int(f.Type.Size()) != 8 {
					t.Errorf("%s: parameter %d is %s (%d bytes), field %s is %d bytes: every argument is 8", e.Name, i, p, ParamBytes(p), f.Name, f.Type.Size())
				}
				float := p[1] == 'f'
				if want := f.Type.Kind() == reflect.Float64; float != want {
					t.Errorf("%s: parameter %d is %s in the PTX, field %s is %v", e.Name, i, p, f.Name, f.Type)
				}
			}
		}
	}
	for name := range listed {
		if !found[name] {
			t.Errorf("Kernels lists %s, which no embedded PTX declares", name)
		}
	}
}

// TestPTXLaunchBounds: the tiled kernels declare __launch_bounds__ (PTX
// .maxntid), which a launch must not exceed; MaxThreads reads it.
func TestPTXLaunchBounds(t *testing.T) {
	for _, tmax := range XentTiles {
		for _, s := range []string{"_f32", "_f64"} {
			name := "xent_t" + itoa(tmax) + s
			if MaxThreads(name) == 0 {
				t.Errorf("%s declares no .maxntid", name)
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
