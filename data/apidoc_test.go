package data

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// TestShuffleDoc: go doc of Set.Shuffle, whose signature reads only
// *rand.Rand, names math/rand/v2, whose Rand it takes.
func TestShuffleDoc(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "set.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "Shuffle" {
			if doc := fd.Doc.Text(); !strings.Contains(doc, "math/rand/v2") {
				t.Errorf("Set.Shuffle's doc does not name math/rand/v2:\n%s", doc)
			}
			return
		}
	}
	t.Fatal("no Shuffle in set.go")
}
