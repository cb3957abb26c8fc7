package target_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
)

// TestPuller_Quarantine checks that nothing vanishes (invariant 5): an
// invalid resource is kept with its OperationOutcome and counted, and a
// document whose attachment is corrupt or missing is reported.
func TestPuller_Quarantine(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := mustSource(t, 6)
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	// The initial extract unvalidated (the slow part under -race), the
	// delta validated.
	work := t.TempDir()
	if _, err := pullerFor(t, src.url, tgt, work, false).Pull(ctx, testODS); err != nil {
		t.Fatal(err)
	}
	p := pullerFor(t, src.url, tgt, work, true)

	docs := liveOf(t, src.db, "DocumentReference")
	if len(docs) < 2 {
		t.Fatalf("need two DocumentReferences, have %d", len(docs))
	}
	patient := liveOf(t, src.db, "Patient")[0].JSON
	bad := regexp.MustCompile(`"id":"[^"]+"`).ReplaceAll(patient, []byte(`"id":"bad-nhs"`))
	bad = regexp.MustCompile(`("system":"https://fhir.nhs.uk/Id/nhs-number","value":")\d+`).ReplaceAll(bad, []byte("${1}1234567890"))
	corrupt := regexp.MustCompile(`"hash":"[^"]+"`).ReplaceAll(docs[0].JSON, []byte(`"hash":"AAAAAAAAAAAAAAAAAAAAAAAAAAA="`))
	missing := regexp.MustCompile(`"url":"Binary/[^"]+"`).ReplaceAll(docs[1].JSON, []byte(`"url":"Binary/gone-1"`))
	obs := liveOf(t, src.db, "Observation")[0].JSON
	orphan := regexp.MustCompile(`"id":"[^"]+"`).ReplaceAll(obs, []byte(`"id":"orphan-1"`))
	orphan = regexp.MustCompile(`"subject":\{"reference":"Patient/[^"]+"`).ReplaceAll(orphan, []byte(`"subject":{"reference":"Patient/nobody"`))
	src.load(t, bytes.Join([][]byte{bad, corrupt, missing, orphan}, []byte("\n")))

	res, err := p.Pull(ctx, testODS)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Counts; c.Received != 4 || c.Applied != 2 || c.Quarantined != 2 || c.AttachmentProblems != 2 {
		t.Fatalf("counts %+v", c)
	}
	if _, err := tgt.Get(ctx, testODS, "Patient", "bad-nhs"); dtm.ErrorCode(err) != dtm.ENotFound {
		t.Fatalf("invalid patient applied: %v", err)
	}
	for range 2 { // a pull repeated over the same records never duplicates them
		recs := quarantined(t, tgt, res.ID)
		got := map[string]string{}
		for _, q := range recs {
			got[q.Reason+" "+q.Type+"/"+q.ID] = string(q.Outcome)
		}
		want := map[string]string{
			dtm.QuarantineInvalid + " Patient/bad-nhs":                    "nhs-number",
			dtm.QuarantineInvalid + " Observation/orphan-1":               "reference-unresolved",
			dtm.QuarantineAttachment + " DocumentReference/" + docs[0].ID: "hash",
			dtm.QuarantineAttachment + " DocumentReference/" + docs[1].ID: "missing",
		}
		if len(got) != len(want) || len(recs) != len(want) {
			t.Fatalf("quarantine %v", got)
		}
		for k, frag := range want {
			if oo := got[k]; !strings.Contains(strings.ToLower(oo), frag) || !json.Valid([]byte(oo)) {
				t.Fatalf("quarantine %q outcome %s; want it to mention %q", k, oo, frag)
			}
		}
		if _, err := p.Pull(ctx, testODS); err != nil {
			t.Fatal(err)
		}
	}
}

// liveOf returns the source's live resources of one type.
func liveOf(tb testing.TB, s dtm.Store, typ string) []dtm.Change {
	tb.Helper()
	var out []dtm.Change
	for _, c := range liveState(tb, s) {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no %s at the source", typ)
	}
	return out
}

// quarantined returns every quarantine record of a pull.
func quarantined(tb testing.TB, s dtm.TargetState, pull string) []dtm.QuarantineRecord {
	tb.Helper()
	var out []dtm.QuarantineRecord
	err := s.Quarantined(context.Background(), testODS, pull, func(q dtm.QuarantineRecord) error {
		out = append(out, q)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
