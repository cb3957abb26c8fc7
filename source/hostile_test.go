package source

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/sqlite"
)

// TestIngester_HostileInputs feeds a corpus of hostile inputs (issue 10)
// into a store that already holds records. Each is either rejected with a
// precise InputError — and then the store is exactly as before: same head,
// same digest — or, where the input is legal FHIR JSON, stored exactly as
// written. None may crash, hang or corrupt what was already accepted.
func TestIngester_HostileInputs(t *testing.T) {
	deep := func(n int) string {
		return `{"resourceType":"Basic","id":"deep","x":` + strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) + `}`
	}
	const maxLine = 32 << 20 // a 50 MB line is over it
	bigLine := `{"resourceType":"Binary","id":"big","contentType":"text/plain","data":"` +
		strings.Repeat("QUJD", 50<<20/4) + `"}`
	txn := func(entries ...string) string {
		return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	}
	tests := []struct {
		name, format, body string
		wantErr            string // "" when the input is legal and must be stored as written
		stored             []string
	}{
		{"DeepNesting", FormatNDJSON, deep(10_000), "nesting deeper than", nil},
		{"LineOf50MB", FormatNDJSON, `{"resourceType":"Patient","id":"ok1"}` + "\n" + bigLine, "line 2", nil},
		{"InvalidUTF8", FormatNDJSON, "{\"resourceType\":\"Patient\",\"id\":\"p\",\"x\":\"\xed\xa0\x80\"}", "invalid UTF-8", nil},
		{"DuplicateIDInTransaction", FormatJSON, txn(
			`{"resource":{"resourceType":"Patient","id":"dup"},"request":{"method":"PUT","url":"Patient/dup"}}`,
			`{"resource":{"resourceType":"Patient","id":"dup","active":false},"request":{"method":"PUT","url":"Patient/dup"}}`),
			"Patient/dup", nil},
		{"DuplicateFullURL", FormatJSON, txn(
			`{"fullUrl":"urn:uuid:6f1c6a6e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","id":"a"},"request":{"method":"POST","url":"Patient"}}`,
			`{"fullUrl":"urn:uuid:6f1c6a6e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","id":"b"},"request":{"method":"POST","url":"Patient"}}`),
			"duplicate fullUrl", nil},
		{"PathID", FormatNDJSON, `{"resourceType":"Patient","id":"../../etc/passwd"}`, "invalid id", nil},
		{"EscapedSlashID", FormatNDJSON, `{"resourceType":"Patient","id":"a\/b"}`, "invalid id", nil},
		{"PercentID", FormatNDJSON, `{"resourceType":"Patient","id":"%2e%2e"}`, "invalid id", nil},
		{"ProtoAsType", FormatNDJSON, `{"resourceType":"__proto__","id":"x"}`, "invalid resourceType", nil},
		{"DuplicateKey", FormatNDJSON, `{"resourceType":"Patient","id":"p","active":true,"active":false}`, "duplicate key", nil},
		{"HalfBatchThenBadLine", FormatNDJSON, `{"resourceType":"Patient","id":"half"}` + "\n" + `{"resourceType":"Patient","id":"bad",}`, "line 2", nil},
		{"HugeNumbers", FormatNDJSON,
			`{"resourceType":"Observation","id":"huge","status":"final","code":{"text":"x"},"valueQuantity":{"value":1e999999},"valueInteger":` + strings.Repeat("9", 400) + `}`,
			"", []string{"Observation/huge"}},
		{"DuplicateIDInNDJSONBatch", FormatNDJSON, // upserts in order: the last line wins
			`{"resourceType":"Patient","id":"dup","active":true}` + "\n" + `{"resourceType":"Patient","id":"dup","active":false}`,
			"", []string{"Patient/dup"}},
		{"PrototypePollutionKeys", FormatNDJSON,
			`{"resourceType":"Basic","id":"proto","__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}`,
			"", []string{"Basic/proto"}},
		{"URNCycle", FormatJSON, txn(
			`{"fullUrl":"urn:uuid:6f1c6a6e-0000-4000-8000-00000000000a","resource":{"resourceType":"Patient","id":"ca","link":[{"other":{"reference":"urn:uuid:6f1c6a6e-0000-4000-8000-00000000000b"},"type":"seealso"}]},"request":{"method":"PUT","url":"Patient/ca"}}`,
			`{"fullUrl":"urn:uuid:6f1c6a6e-0000-4000-8000-00000000000b","resource":{"resourceType":"Patient","id":"cb","link":[{"other":{"reference":"urn:uuid:6f1c6a6e-0000-4000-8000-00000000000a"},"type":"seealso"}]},"request":{"method":"PUT","url":"Patient/cb"}}`),
			"", []string{"Patient/ca", "Patient/cb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			db := MustOpen(t)
			in := &Ingester{Journal: db, MaxLineBytes: maxLine}
			baseline := `{"resourceType":"Patient","id":"p0"}` + "\n" + `{"resourceType":"Observation","id":"o0","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p0"}}`
			if _, err := in.Load(ctx, "A81001", "baseline.ndjson", FormatNDJSON, strings.NewReader(baseline)); err != nil {
				t.Fatal(err)
			}
			before := storeState(t, db)
			// One batch: a bad line rejects the lines before it in the file too.
			in.BatchSize = 100
			_, err := in.Load(ctx, "A81001", "hostile", tt.format, strings.NewReader(tt.body))
			if tt.wantErr != "" {
				var ie *InputError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want an InputError containing %q", err, tt.wantErr)
				}
				if msg := err.Error(); len(msg) > 300 || strings.Contains(msg, "QUJD") {
					t.Errorf("the error echoes the input (%d bytes): %.200s", len(msg), msg)
				}
				if after := storeState(t, db); after != before {
					t.Errorf("rejected input changed the store: %s, was %s", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("legal input refused: %v", err)
			}
			for _, ref := range tt.stored {
				typ, id, _ := strings.Cut(ref, "/")
				c, err := db.Get(ctx, "A81001", typ, id)
				if err != nil {
					t.Fatalf("%s: %v", ref, err)
				}
				for _, literal := range []string{"1e999999", strings.Repeat("9", 400), `"__proto__":{"isAdmin":true}`} {
					if strings.Contains(tt.body, literal) && !bytes.Contains(c.JSON, []byte(literal)) {
						t.Errorf("%s lost %.40q as written: %s", ref, literal, c.JSON)
					}
				}
				if tt.name == "DuplicateIDInNDJSONBatch" && !bytes.Contains(c.JSON, []byte(`"active":false`)) {
					t.Errorf("%s: the last upsert did not win: %s", ref, c.JSON)
				}
				if tt.name == "URNCycle" && !bytes.Contains(c.JSON, []byte(`"reference":"Patient/c`)) {
					t.Errorf("%s: urn:uuid reference not rewritten: %s", ref, c.JSON)
				}
			}
			if before == storeState(t, db) {
				t.Error("legal input stored nothing")
			}
		})
	}
}

// storeState summarises the practice's journal: its head and digest root.
func storeState(t *testing.T, db *sqlite.DB) string {
	t.Helper()
	ctx := context.Background()
	head, err := db.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := reconcile.Compute(ctx, db, "A81001", head, nil)
	if err != nil {
		t.Fatal(err)
	}
	return "seq " + strconv.FormatInt(head.Seq, 10) + " root " + d.Root
}
