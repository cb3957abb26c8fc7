package bulk

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
)

// exported is the content of one complete export.
type exported struct {
	m       manifest
	out     map[string]string // "Type/id" -> meta.versionId
	json    map[string][]byte // "Type/id" -> line
	deleted map[string]bool   // "Type/id"
	errors  int               // error-file lines
}

// fetch downloads every file of m and checks the file-level rules: counts
// match lines, one type per output file, deleted lines are transaction
// Bundles of DELETE entries, and nothing appears twice.
func (e *testEnv) fetch(m manifest, headers ...string) exported {
	e.tb.Helper()
	x := exported{m: m, out: map[string]string{}, json: map[string][]byte{}, deleted: map[string]bool{}}
	for _, f := range m.Output {
		for _, line := range e.lines(f, headers...) {
			var r struct {
				ResourceType, ID string
				Meta             struct{ VersionID string }
			}
			if err := json.Unmarshal(line, &r); err != nil || r.ResourceType != f.Type {
				e.tb.Fatalf("%s: line %s: type %q, err %v", f.URL, line, r.ResourceType, err)
			}
			key := r.ResourceType + "/" + r.ID
			if _, dup := x.out[key]; dup {
				e.tb.Fatalf("%s reported twice in output", key)
			}
			x.out[key], x.json[key] = r.Meta.VersionID, line
		}
	}
	for _, f := range m.Deleted {
		for _, line := range e.lines(f, headers...) {
			var b struct {
				ResourceType, Type string
				Entry              []struct{ Request struct{ Method, URL string } }
			}
			if err := json.Unmarshal(line, &b); err != nil || b.ResourceType != "Bundle" || b.Type != "transaction" || len(b.Entry) == 0 {
				e.tb.Fatalf("deleted line %s: %v", line, err)
			}
			for _, en := range b.Entry {
				if en.Request.Method != "DELETE" || x.deleted[en.Request.URL] {
					e.tb.Fatalf("deleted entry %+v (duplicate or not DELETE)", en)
				}
				if _, both := x.out[en.Request.URL]; both {
					e.tb.Fatalf("%s is both in output and deleted", en.Request.URL)
				}
				x.deleted[en.Request.URL] = true
			}
		}
	}
	for _, f := range m.Error {
		x.errors += len(e.lines(f, headers...))
	}
	return x
}

// lines downloads a file and splits it into lines, checking the count.
func (e *testEnv) lines(f manifestFile, headers ...string) [][]byte {
	e.tb.Helper()
	b := e.download(f.URL, false, headers...)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		e.tb.Fatalf("%s: not newline-terminated", f.URL)
	}
	ls := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(b) == 0 {
		ls = nil
	}
	if int64(len(ls)) != f.Count {
		e.tb.Fatalf("%s: %d lines, manifest count %d", f.URL, len(ls), f.Count)
	}
	return ls
}

// export runs a whole export at path and returns its content.
func (e *testEnv) export(path string, headers ...string) exported {
	e.tb.Helper()
	return e.fetch(e.wait(e.kickoff(path, headers...), headers...), headers...)
}

// keys returns "Type/id" of every output resource, sorted.
func (x exported) keys() []string { return slices.Sorted(maps.Keys(x.out)) }

// deletedKeys returns the deleted "Type/id", sorted.
func (x exported) deletedKeys() []string { return slices.Sorted(maps.Keys(x.deleted)) }
