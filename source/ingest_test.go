package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
)

const sharedData = "../../shared/data"

// MustOpen opens a fresh SQLite store with practice A81001 registered.
func MustOpen(tb testing.TB) *sqlite.DB {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "source.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: "A81001", CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	return db
}

func skipWithoutSharedData(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(sharedData); err != nil {
		tb.Skipf("test data %s is absent (only in the development workspace): %v", sharedData, err)
	}
}

func total(t *testing.T, db *sqlite.DB) int64 {
	t.Helper()
	ctx := context.Background()
	head, err := db.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := db.Counts(ctx, "A81001", head.Seq)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return n
}

func TestIngester_LoadPaths(t *testing.T) {
	t.Run("OK/UKCoreExamples", func(t *testing.T) {
		skipWithoutSharedData(t)
		db := MustOpen(t)
		in := &Ingester{Journal: db}
		st, err := in.LoadPaths(context.Background(), "A81001", []string{filepath.Join(sharedData, "ukcore-examples.ndjson")})
		if err != nil {
			t.Fatal(err)
		}
		if st.Read != 215 || st.Applied != 215 {
			t.Errorf("read %d applied %d, want 215 and 215", st.Read, st.Applied)
		}
		// Loading the same file again changes nothing.
		st, err = in.LoadPaths(context.Background(), "A81001", []string{filepath.Join(sharedData, "ukcore-examples.ndjson")})
		if err != nil || st.Applied != 0 || st.Skipped != 215 {
			t.Errorf("reload: applied %d skipped %d err %v, want 0, 215, nil", st.Applied, st.Skipped, err)
		}
	})
	t.Run("OK/SyntheaTransactionBundles", func(t *testing.T) {
		skipWithoutSharedData(t)
		db := MustOpen(t)
		in := &Ingester{Journal: db}
		st, err := in.LoadPaths(context.Background(), "A81001", []string{filepath.Join(sharedData, "synthea-20")})
		if err != nil {
			t.Fatal(err)
		}
		if st.Files != 22 || st.Read != 6732 {
			t.Errorf("files %d read %d, want 22 and 6732", st.Files, st.Read)
		}
		// Practitioners repeat across files (104 entries name a resource
		// already loaded): each is a new version or, when identical, skipped.
		if n := total(t, db); n != 6628 || st.Applied+st.Skipped != 6732 {
			t.Errorf("stored %d, applied %d + skipped %d; want 6628 stored of 6732", n, st.Applied, st.Skipped)
		}
		// No urn:uuid reference survives: every reference was rewritten.
		err = db.Changes(context.Background(), dtm.ChangeQuery{Practice: "A81001", Until: st.Snapshot.Seq}, func(c dtm.Change) error {
			if bytes.Contains(c.JSON, []byte(`"reference":"urn:uuid:`)) {
				return errors.New(c.Type + "/" + c.ID + " still has a urn:uuid reference")
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	t.Run("OK/GzipAndDirectory", func(t *testing.T) {
		db := MustOpen(t)
		dir := t.TempDir()
		writeGzip(t, filepath.Join(dir, "Patient.ndjson.gz"), `{"resourceType":"Patient","id":"p1","active":true}`+"\n"+`{"resourceType":"Patient","id":"p2"}`)
		os.WriteFile(filepath.Join(dir, "obs.json"), []byte(`{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p1"},"valueQuantity":{"value":5.60}}`), 0o644)
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
		in := &Ingester{Journal: db}
		st, err := in.LoadPaths(context.Background(), "A81001", []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		if st.Files != 2 || st.Applied != 3 {
			t.Errorf("files %d applied %d, want 2 and 3", st.Files, st.Applied)
		}
		obs, err := db.Get(context.Background(), "A81001", "Observation", "o1")
		if err != nil {
			t.Fatal(err)
		}
		if obs.Patient != "p1" || !bytes.Contains(obs.JSON, []byte(`"value":5.60`)) {
			t.Errorf("observation patient %q json %s: want patient p1 and value 5.60 kept", obs.Patient, obs.JSON)
		}
	})
	t.Run("OK/BundleDelete", func(t *testing.T) {
		db := MustOpen(t)
		in := &Ingester{Journal: db}
		load := func(body string) {
			t.Helper()
			if _, err := in.Load(context.Background(), "A81001", "b.json", FormatJSON, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		load(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:9b1c2a34-0000-4000-8000-000000000001","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Flag","id":"f1","status":"active","code":{"text":"x"},"subject":{"reference":"urn:uuid:9b1c2a34-0000-4000-8000-000000000001"}},"request":{"method":"PUT","url":"Flag/f1"}}]}`)
		flag, err := db.Get(context.Background(), "A81001", "Flag", "f1")
		if err != nil || flag.Patient != "9b1c2a34-0000-4000-8000-000000000001" {
			t.Fatalf("flag %+v err %v: want it in the new patient's compartment", flag.Patient, err)
		}
		load(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Flag/f1"}}]}`)
		if _, err := db.Get(context.Background(), "A81001", "Flag", "f1"); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Errorf("after DELETE: err %v, want not-found", err)
		}
	})
	t.Run("ErrBadLine", func(t *testing.T) {
		db := MustOpen(t)
		in := &Ingester{Journal: db, BatchSize: 2}
		lines := []string{
			`{"resourceType":"Patient","id":"a"}`, `{"resourceType":"Patient","id":"b"}`, // batch 1: committed
			`{"resourceType":"Patient","id":"c"}`, // batch 2: not committed
			`{"resourceType":"Patient","id":"d",}`,
		}
		_, err := in.Load(context.Background(), "A81001", "bad.ndjson", FormatNDJSON, strings.NewReader(strings.Join(lines, "\n")))
		var ie *InputError
		if !errors.As(err, &ie) || ie.Name != "bad.ndjson" || ie.Line != 4 {
			t.Fatalf("err %v, want an InputError at bad.ndjson line 4", err)
		}
		if n := total(t, db); n != 2 {
			t.Errorf("%d resources stored, want the 2 of the first batch", n)
		}
	})
	t.Run("ErrBadInputs", func(t *testing.T) {
		tests := []struct{ name, format, body string }{
			{"InvalidUTF8", FormatNDJSON, "{\"resourceType\":\"Patient\",\"id\":\"x\",\"name\":[{\"text\":\"\xff\"}]}"},
			{"MissingID", FormatNDJSON, `{"resourceType":"Patient"}`},
			{"PathID", FormatNDJSON, `{"resourceType":"Patient","id":"../etc"}`},
			{"NotObject", FormatNDJSON, `[1,2]`},
			{"ConditionalDelete", FormatJSON, `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Patient?identifier=x"}}]}`},
			{"UnknownUUID", FormatJSON, `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Flag","id":"f","subject":{"reference":"urn:uuid:00000000-0000-4000-8000-000000000009"}},"request":{"method":"PUT","url":"Flag/f"}}]}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := MustOpen(t)
				in := &Ingester{Journal: db}
				_, err := in.Load(context.Background(), "A81001", "in", tt.format, strings.NewReader(tt.body))
				var ie *InputError
				if !errors.As(err, &ie) {
					t.Fatalf("err %v, want an InputError", err)
				}
				if n := total(t, db); n != 0 {
					t.Errorf("%d resources stored from bad input", n)
				}
			})
		}
	})
}

func writeGzip(t *testing.T, path, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(content))
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
