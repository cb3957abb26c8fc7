package postgres

import (
	"bytes"
	"os"
	"testing"
)

// TestApplyCopy checks that apply.go is the same as sqlite/apply.go but for
// the package clause and the line naming the other copy.
func TestApplyCopy(t *testing.T) {
	ours, err := os.ReadFile("apply.go")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile("../sqlite/apply.go")
	if err != nil {
		t.Fatal(err)
	}
	theirs = bytes.Replace(theirs, []byte("package sqlite\n"), []byte("package postgres\n"), 1)
	theirs = bytes.Replace(theirs, []byte("Apply. postgres/apply.go is"), []byte("Apply. sqlite/apply.go is"), 1)
	if !bytes.Equal(ours, theirs) {
		t.Fatal("postgres/apply.go and sqlite/apply.go differ: keep them identical")
	}
}
