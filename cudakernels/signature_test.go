package cudakernels

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSignatures parses the extern "C" __global__ declarations of every .cu
// file (after expanding the function-like macros that stamp kernels out) and
// checks them against Kernels: every kernel in the sources is listed, in the
// right module, with an argument struct whose fields match the parameters
// one for one (name, order, and kind: pointer → Ptr, long long → int64,
// double → float64). It also checks the XENT_* flag macros (xent_row.cuh)
// against the Xent* constants, and that no flag or other object-like macro
// is defined in two files. It needs no GPU and no nvcc.
func TestSignatures(t *testing.T) {
	sources, err := filepath.Glob("*.cu")
	if err != nil || len(sources) == 0 {
		t.Fatalf("no .cu sources: %v", err)
	}
	headers, _ := filepath.Glob("*.cuh")
	found := map[string]cuKernel{}
	macros := map[string]string{}
	definedIn := map[string]string{}
	for _, src := range append(sources, headers...) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		ks, defs, err := parseCU(string(b))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, k := range ks {
			k.module = strings.TrimSuffix(src, ".cu")
			if _, dup := found[k.name]; dup {
				t.Errorf("kernel %s is defined twice", k.name)
			}
			found[k.name] = k
		}
		for n, v := range defs {
			if strings.HasSuffix(n, "_CUH") {
				continue // include guard
			}
			if other, dup := definedIn[n]; dup {
				t.Errorf("#define %s is in both %s and %s: define it once (a header)", n, other, src)
			}
			macros[n], definedIn[n] = v, src
		}
	}
	listed := map[string]bool{}
	for _, k := range Kernels {
		listed[k.Name] = true
		cu, ok := found[k.Name]
		if !ok {
			t.Errorf("Kernels lists %s, which no .cu file defines", k.Name)
			continue
		}
		if cu.module != k.Module {
			t.Errorf("%s is in %s.cu, Kernels says module %s", k.Name, cu.module, k.Module)
		}
		checkArgs(t, k.Name, cu.params, reflect.TypeOf(k.Args))
	}
	for name, k := range found {
		if !listed[name] {
			t.Errorf("%s.cu defines kernel %s, which Kernels does not list", k.module, name)
		}
	}
	for _, f := range []struct {
		macro string
		want  int64
	}{
		{"XENT_SOFT", XentSoft}, {"XENT_IGNORE", XentIgnore}, {"XENT_GRAD", XentGrad},
		{"XENT_MEAN", XentMean}, {"XENT_CACHE", XentCache},
	} {
		v, ok := macros[f.macro]
		if !ok {
			t.Errorf("no #define %s in the .cu sources or .cuh headers", f.macro)
			continue
		}
		if got := strings.TrimSuffix(strings.TrimSuffix(v, "LL"), "ll"); got != strconv.FormatInt(f.want, 10) {
			t.Errorf("#define %s %s, Go has %d", f.macro, v, f.want)
		}
	}
	for name, v := range macros {
		if _, err := strconv.ParseInt(strings.TrimSuffix(v, "LL"), 0, 64); err != nil {
			continue // not a flag (XENT_ARGS, ...)
		}
		switch name {
		case "XENT_SOFT", "XENT_IGNORE", "XENT_GRAD", "XENT_MEAN", "XENT_CACHE":
		default:
			t.Errorf("integer macro %s (%s) has no Go constant checked here", name, definedIn[name])
		}
	}
}

// checkArgs compares a kernel's parameters with its Go argument struct.
func checkArgs(t *testing.T, kernel string, params []cuParam, st reflect.Type) {
	t.Helper()
	if st.Kind() != reflect.Struct {
		t.Errorf("%s: argument type %v is not a struct", kernel, st)
		return
	}
	if st.NumField() != len(params) {
		t.Errorf("%s: %d parameters in CUDA, %d fields in %v", kernel, len(params), st.NumField(), st)
	}
	ptr := reflect.TypeOf(Ptr(0))
	for i := 0; i < min(st.NumField(), len(params)); i++ {
		f, p := st.Field(i), params[i]
		if norm(f.Name) != norm(p.name) {
			t.Errorf("%s: parameter %d is %q in CUDA, field %s in %v", kernel, i, p.name, f.Name, st)
		}
		if f.Type.Size() != 8 {
			t.Errorf("%s: field %s of %v is %d bytes; cu copies every argument as 8", kernel, f.Name, st, f.Type.Size())
		}
		var want reflect.Type
		switch p.kind {
		case "ptr":
			want = ptr
		case "int64":
			want = reflect.TypeOf(int64(0))
		case "float64":
			want = reflect.TypeOf(float64(0))
		default:
			t.Errorf("%s: parameter %s has type %q: want a pointer, long long or double", kernel, p.name, p.ctype)
			continue
		}
		if f.Type != want {
			t.Errorf("%s: parameter %s is %q in CUDA, field %s is %v (want %v)", kernel, p.name, p.ctype, f.Name, f.Type, want)
		}
	}
}

func norm(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }

type cuParam struct{ ctype, name, kind string }

type cuKernel struct {
	name, module string
	params       []cuParam
}

var (
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	lineComment  = regexp.MustCompile(`//[^\n]*`)
	objectMacro  = regexp.MustCompile(`(?m)^#define\s+(\w+)\s+([^\s(][^\n]*)$`)
	funcMacro    = regexp.MustCompile(`(?m)^#define\s+(\w+)\(([^)]*)\)(.*)$`)
	kernelDecl   = regexp.MustCompile(`extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(([^)]*)\)`)
	identifier   = regexp.MustCompile(`\w+`)
)

// parseCU returns the kernels declared in a .cu source (function-like macros
// expanded at their invocations) and its object-like #defines.
func parseCU(src string) ([]cuKernel, map[string]string, error) {
	src = blockComment.ReplaceAllString(src, " ")
	src = lineComment.ReplaceAllString(src, "")
	src = strings.ReplaceAll(src, "\\\n", " ")
	defs := map[string]string{}
	for _, m := range objectMacro.FindAllStringSubmatch(src, -1) {
		defs[m[1]] = strings.TrimSpace(m[2])
	}
	// Expand the function-like macros wherever they are invoked (their
	// bodies may invoke others), until nothing changes.
	type macro struct {
		call   *regexp.Regexp
		params []string
		body   string
	}
	var ms []macro
	text := src
	for _, m := range funcMacro.FindAllStringSubmatch(src, -1) {
		mc := macro{call: regexp.MustCompile(`\b` + m[1] + `\(([^()]*)\)`), body: m[3]}
		for _, p := range strings.Split(m[2], ",") {
			mc.params = append(mc.params, strings.TrimSpace(p))
		}
		ms = append(ms, mc)
		text = strings.Replace(text, m[0], "", 1)
	}
	for pass := 0; pass < 8; pass++ {
		before := text
		for _, mc := range ms {
			text = mc.call.ReplaceAllStringFunc(text, func(inv string) string {
				args := strings.Split(mc.call.FindStringSubmatch(inv)[1], ",")
				if len(args) != len(mc.params) {
					return inv
				}
				sub := map[string]string{}
				for i, p := range mc.params {
					sub[p] = strings.TrimSpace(args[i])
				}
				out := identifier.ReplaceAllStringFunc(mc.body, func(id string) string {
					if v, ok := sub[id]; ok {
						return v
					}
					return id
				})
				return " " + regexp.MustCompile(`\s*##\s*`).ReplaceAllString(out, "") + " "
			})
		}
		if text == before {
			break
		}
	}
	var ks []cuKernel
	for _, m := range kernelDecl.FindAllStringSubmatch(text, -1) {
		k := cuKernel{name: m[1]}
		for _, p := range strings.Split(m[2], ",") {
			p = strings.Join(strings.Fields(p), " ")
			ids := identifier.FindAllString(p, -1)
			if len(ids) < 2 {
				continue
			}
			param := cuParam{name: ids[len(ids)-1]}
			param.ctype = strings.TrimSpace(strings.TrimSuffix(p, param.name))
			switch {
			case strings.Contains(param.ctype, "*"):
				param.kind = "ptr"
			case param.ctype == "long long":
				param.kind = "int64"
			case param.ctype == "double":
				param.kind = "float64"
			}
			k.params = append(k.params, param)
		}
		ks = append(ks, k)
	}
	return ks, defs, nil
}
