package backend

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
	"testing"
)

// The package's exported names are the user's API: what only backend
// writers need lives in package kit, and must not come back here.
func TestSurfaceIsTheUsersAPI(t *testing.T) {
	writersOnly := []string{"CheckBatch", "CheckStep", "CheckParams", "CheckOptimizerState", "Contiguous",
		"ExplainNonFinite", "Footprint", "Sizer", "CheckHostMemory", "HostAvailable", "FormatBytes",
		"Ranks", "DataParallel", "LocalDenominators", "Parallel", "ReduceStats", "Stats", "Resident"}
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, name := range writersOnly {
				if obj := f.Scope.Lookup(name); obj != nil && ast.IsExported(name) {
					t.Errorf("backend exports %s, which only backend writers need: it belongs in package kit", name)
				}
			}
		}
	}
}
