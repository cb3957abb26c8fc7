package source_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/storetest"
	"github.com/google/go-cmp/cmp"
)

const digestPath = "/dtm/v1/practices/" + testODS + "/digest"

// getJSON GETs path as `as`, wants 200 and decodes into v.
func (e *issueEnv) getJSON(tb testing.TB, as, path string, v any) {
	tb.Helper()
	status, b := e.do(tb, as, "GET", path, nil)
	if status != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatal(err)
	}
}

func TestDigestServer(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	apply := func(ws ...dtm.Write) dtm.Snapshot {
		t.Helper()
		e.clock.Advance(time.Second)
		c, err := e.db.Apply(ctx, testODS, ws)
		if err != nil {
			t.Fatal(err)
		}
		return c.Snapshot
	}
	org := storetest.Upsert("Organization", "org-1", "", []byte(`{"resourceType":"Organization","id":"org-1","name":"Surgery"}`))
	first := apply(org, storetest.PatientWrite("p1", "One"), storetest.PatientWrite("p2", "Two"),
		storetest.ObservationWrite("o1", "p1", "5.60"), storetest.ObservationWrite("o2", "p2", "1"))
	head := apply(storetest.ObservationWrite("o1", "p1", "5.6"), storetest.Delete("Observation", "o2"),
		storetest.ObservationWrite("o3", "p1", "2"))
	e.clock.Advance(time.Minute)

	want := func(snap dtm.Snapshot) source.DigestJSON {
		d, _, err := reconcile.Compute(ctx, e.db, testODS, snap, nil)
		if err != nil {
			t.Fatal(err)
		}
		return source.DigestJSON{Practice: testODS, TransactionTime: fhir.FormatInstant(snap.Time), Seq: snap.Seq,
			Counts: d.Counts, Total: d.Total, Root: d.Root, Buckets: d.Buckets}
	}
	t.Run("Head", func(t *testing.T) {
		var got source.DigestJSON
		e.getJSON(t, "tss", digestPath, &got)
		if diff := cmp.Diff(want(head), got); diff != "" {
			t.Fatalf("digest (-want +got):\n%s", diff)
		}
		if got.Total != 5 || got.Counts["Observation"] != 2 {
			t.Errorf("counts %v total %d", got.Counts, got.Total)
		}
	})
	t.Run("At", func(t *testing.T) {
		for _, at := range []time.Time{first.Time, first.Time.Add(500 * time.Millisecond)} {
			var got source.DigestJSON
			e.getJSON(t, "tss", digestPath+"?at="+url.QueryEscape(fhir.FormatInstant(at)), &got)
			if diff := cmp.Diff(want(first), got); diff != "" {
				t.Fatalf("digest at %v (-want +got):\n%s", at, diff)
			}
		}
	})
	t.Run("Bucket", func(t *testing.T) {
		d := want(head)
		for _, p := range []string{"p1", "p2", ""} {
			var b source.BucketJSON
			e.getJSON(t, "tss", digestPath+"?at="+url.QueryEscape(d.TransactionTime)+"&patient="+p, &b)
			if b.Digest != d.Buckets[p] || b.Patient != p || b.Seq != head.Seq || len(b.Entries) == 0 {
				t.Fatalf("bucket %q: %+v, want digest %s", p, b, d.Buckets[p])
			}
			var es []dtm.DigestEntry
			for _, x := range b.Entries {
				es = append(es, dtm.DigestEntry{Type: x.Type, ID: x.ID, Version: x.Version, Hash: x.Hash})
			}
			if reconcile.BucketDigest(es) != b.Digest {
				t.Fatalf("bucket %q entries do not hash to its digest", p)
			}
		}
		var b source.BucketJSON
		e.getJSON(t, "tss", digestPath+"?patient=nobody", &b)
		if b.Digest != "" || len(b.Entries) != 0 {
			t.Fatalf("unknown patient's bucket %+v", b)
		}
	})
	t.Run("Lookup", func(t *testing.T) {
		req := source.LookupRequest{At: fhir.FormatInstant(head.Time), Resources: []string{"Observation/o1", "Observation/o2", "Observation/o9"}}
		status, body := e.do(t, "tss", "POST", digestPath+"/lookup", req)
		var got source.LookupJSON
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("lookup: %d %s", status, body)
		}
		var states []string
		for _, r := range got.Resources {
			states = append(states, r.Resource+" "+r.State)
		}
		wantStates := []string{"Observation/o1 live", "Observation/o2 deleted", "Observation/o9 absent"}
		if !cmp.Equal(states, wantStates) || got.Resources[0].Version != 2 || got.Resources[0].Patient != "p1" || got.Resources[0].Hash == "" {
			t.Fatalf("lookup %+v", got)
		}
		req.At = fhir.FormatInstant(first.Time)
		_, body = e.do(t, "tss", "POST", digestPath+"/lookup", req)
		json.Unmarshal(body, &got)
		if got.Resources[1].State != source.LookupLive || got.Resources[0].Version != 1 {
			t.Fatalf("lookup at the first commit %+v", got)
		}
	})
	t.Run("Err", func(t *testing.T) {
		for _, c := range []struct {
			as, method, path string
			body             any
			want             int
		}{
			{"tss", "GET", digestPath + "?at=yesterday", nil, http.StatusBadRequest},
			{"tss", "GET", digestPath + "?at=" + url.QueryEscape(fhir.FormatInstant(e.clock.Now().Add(time.Hour))), nil, http.StatusBadRequest},
			{"other", "GET", digestPath, nil, http.StatusForbidden},
			{"authoff", "GET", "/dtm/v1/practices/Z99999/digest", nil, http.StatusNotFound},
			{"tss", "POST", digestPath + "/lookup", source.LookupRequest{Resources: []string{"not a resource"}}, http.StatusBadRequest},
			{"tss", "POST", digestPath + "/lookup", source.LookupRequest{Resources: strings.Split(strings.Repeat("Patient/x,", source.MaxLookupResources+1), ",")}, http.StatusRequestEntityTooLarge},
			{"other", "POST", digestPath + "/lookup", source.LookupRequest{Resources: []string{"Patient/p1"}}, http.StatusForbidden},
		} {
			status, b := e.do(t, c.as, c.method, c.path, c.body)
			wantOutcome(t, status, b, c.want)
		}
	})
}
