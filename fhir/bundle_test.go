package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadBundle_Synthea(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(sharedData(t, "synthea-20"), "*.json"))
	if len(files) != 22 {
		t.Fatalf("%d files, want 22", len(files))
	}
	total := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want := expectedSynthea(t, path)
		emitted := map[string]bool{}
		var rewritten []string
		typ, err := ReadBundle(f, func(e BundleEntry) error {
			if !bytes.Equal(e.Resource, want[e.Index]) {
				t.Errorf("entry %d: resource differs from the source:\n got %.300s\nwant %.300s", e.Index, e.Resource, want[e.Index])
			}
			if e.Method != "POST" || e.Index != len(emitted) {
				t.Errorf("%s entry %d: method %q", filepath.Base(path), e.Index, e.Method)
			}
			h, err := ParseHeader(e.Resource)
			if err != nil || h.ResourceType != e.ResourceType || h.ID != e.ID {
				t.Errorf("entry %d: header %+v, %v; want %s/%s", e.Index, h, err, e.ResourceType, e.ID)
			}
			if bytes.Contains(e.Resource, []byte("urn:uuid:")) {
				t.Errorf("entry %d: urn:uuid left in %s/%s", e.Index, e.ResourceType, e.ID)
			}
			if bytes.ContainsAny(e.Resource, "\n") {
				t.Errorf("entry %d: not single-line", e.Index)
			}
			if _, err := Compartment(h.ResourceType, e.Resource); err != nil {
				t.Errorf("entry %d: Compartment: %v", e.Index, err)
			}
			emitted[e.ResourceType+"/"+e.ID] = true
			_ = scanRefs(e.Resource, func(start, end int) error {
				rewritten = append(rewritten, stringValue(e.Resource[start:end]))
				return nil
			})
			return nil
		})
		f.Close()
		if err != nil || typ != "transaction" {
			t.Fatalf("%s: ReadBundle = %q, %v", filepath.Base(path), typ, err)
		}
		for _, ref := range rewritten {
			if ref[0] != '#' && !strings.Contains(ref, "?") && !emitted[ref] {
				t.Errorf("%s: reference %s resolves to no emitted resource", filepath.Base(path), ref)
			}
		}
		total += len(emitted)
	}
	if total != 6732 {
		t.Errorf("%d resources, want 6732", total)
	}
}

// expectedSynthea computes, independently of ReadBundle (with
// encoding/json), what each entry's resource must be: compacted, with
// every "urn:uuid:..." string replaced by the Type/id of its entry.
func expectedSynthea(t *testing.T, path string) [][]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Entry []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	var repl []string
	for _, e := range b.Entry {
		var h struct{ ResourceType, ID string }
		if err := json.Unmarshal(e.Resource, &h); err != nil {
			t.Fatal(err)
		}
		repl = append(repl, `"`+e.FullURL+`"`, `"`+h.ResourceType+"/"+h.ID+`"`)
	}
	r := strings.NewReplacer(repl...)
	var out [][]byte
	for _, e := range b.Entry {
		var c bytes.Buffer
		if err := json.Compact(&c, e.Resource); err != nil {
			t.Fatal(err)
		}
		out = append(out, []byte(r.Replace(c.String())))
	}
	return out
}
