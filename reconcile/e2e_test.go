package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/bulk"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/postgres"
	"github.com/dtm-project/dtm/reconcile"
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.DiscardHandler)

// targetStore is a target store with its target state.
type targetStore interface {
	dtm.Store
	dtm.TargetState
}

// startSource serves a generated practice of n patients, one of whose
// Patient resources has a wrong NHS number check digit, as "dtm source
// serve --auth none" does (Bulk Data, control plane, issues and digests).
// It returns the source's URL and the id of the invalid Patient.
func startSource(tb testing.TB, n int) (url, invalid string) {
	tb.Helper()
	ctx := context.Background()
	db := mustStore(tb)
	var batch []dtm.Write
	nhs := regexp.MustCompile(`("https://fhir.nhs.uk/Id/nhs-number","value":"\d{9})(\d)"`)
	err := synth.Generate(ctx, synth.Options{Practice: ods, Patients: n, Seed: 3}, func(typ string, b []byte) error {
		h, err := fhir.ParseHeader(b)
		if err != nil {
			return err
		}
		b = bytes.Clone(b)
		if typ == "Patient" && invalid == "" {
			invalid = h.ID
			b = nhs.ReplaceAllFunc(b, func(m []byte) []byte {
				m = bytes.Clone(m)
				m[len(m)-2] = '0' + (m[len(m)-2]-'0'+1)%10
				return m
			})
		}
		patient, _ := fhir.Compartment(typ, b)
		batch = append(batch, dtm.Write{Type: typ, ID: h.ID, Op: dtm.OpUpsert, JSON: b, Patient: patient,
			Member: typ == "Patient" && fhir.PatientActive(b)})
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Apply(ctx, ods, batch); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	h := &source.Handler{Store: db, Clock: dtm.SystemClock{}, Logger: quiet}
	h.Routes(mux)
	h.IssueRoutes(mux)
	srv := httptest.NewServer(nil)
	bs := bulk.NewServer(bulk.Config{Journal: db, Practices: db, Jobs: db, BaseURL: srv.URL, Logger: quiet,
		Caller: func(r *http.Request) (string, []string) { return "", []string{dtm.AllPractices} }})
	mux.Handle("/fhir/", bs.Handler())
	all := dtm.Principal{Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), all)))
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(ctx); close(done) }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done })
	return srv.URL, invalid
}

// pull migrates the practice from the source into tgt, validating.
func pull(tb testing.TB, url string, tgt targetStore) *target.Client {
	tb.Helper()
	c, err := target.NewClient(url, target.ClientOptions{Logger: quiet, MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: ods})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := target.NewPuller(target.Config{Store: tgt, State: tgt, Client: c, Validator: v, WorkDir: tb.TempDir(), Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := p.Pull(context.Background(), ods); err != nil {
		tb.Fatal(err)
	}
	return c
}

// differences returns "kind resource" for each difference.
func differences(r target.ReconcileReport) []string {
	var out []string
	for _, d := range r.Differences {
		out = append(out, d.Kind+" "+d.Resource)
	}
	return out
}

// testReconcile migrates a practice into tgt, checks that reconcile
// accounts for the one quarantined resource, then corrupts, deletes and
// adds single resources in tgt and checks that reconcile names exactly
// those.
func testReconcile(t *testing.T, tgt targetStore) {
	ctx := context.Background()
	url, invalid := startSource(t, 6)
	client := pull(t, url, tgt)
	opts := target.ReconcileOptions{State: tgt, TreeFile: filepath.Join(t.TempDir(), "tree.json")}

	rep, err := target.Reconcile(ctx, client, tgt, ods, opts)
	if err != nil {
		t.Fatal(err)
	}
	quarantined := "quarantined Patient/" + invalid
	if rep.Result != target.ReconcileAccounted || !cmp.Equal(differences(rep), []string{quarantined}) || rep.TargetTree != "computed" {
		t.Fatalf("after the pull: %s %v, want accounted with %s", rep.Result, differences(rep), quarantined)
	}
	if d := rep.Differences[0]; !strings.Contains(d.Reason, ukcore.RuleNHSNumberCheckDigit) || d.SourceVersion != 1 {
		t.Errorf("quarantined difference %+v", d)
	}
	if rep.SourceDigest.Total != rep.TargetDigest.Total+1 || len(rep.DifferentBuckets) != 1 || rep.DifferentBuckets[0] != invalid {
		t.Errorf("digests: source %+v target %+v buckets %v", rep.SourceDigest, rep.TargetDigest, rep.DifferentBuckets)
	}

	// Tamper with the target: one resource in a patient's compartment and
	// one in no compartment changed, one deleted, one added.
	head, _ := tgt.Head(ctx)
	var obs, cond, org dtm.Change
	err = tgt.Changes(ctx, dtm.ChangeQuery{Practice: ods, Until: head.Seq}, func(c dtm.Change) error {
		switch {
		case c.Op != dtm.OpUpsert:
		case c.Type == "Observation" && obs.ID == "" && c.Patient != invalid:
			obs = c
		case c.Type == "Condition" && cond.ID == "" && c.Patient != invalid && c.Patient != obs.Patient:
			cond = c
		case c.Type == "Organization" && org.ID == "":
			org = c
		}
		return nil
	})
	if err != nil || obs.ID == "" || cond.ID == "" || org.ID == "" {
		t.Fatalf("picking resources: %v", err)
	}
	corrupt := func(c dtm.Change) dtm.Write {
		b := bytes.Replace(c.JSON, []byte(`"resourceType":`), []byte(`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},"resourceType":`), 1)
		return dtm.Write{Type: c.Type, ID: c.ID, Op: dtm.OpUpsert, JSON: b, Version: c.Version + 1, Patient: c.Patient}
	}
	extra := dtm.Write{Type: "Observation", ID: "extra-1", Op: dtm.OpUpsert, Patient: obs.Patient,
		JSON: fmt.Appendf(nil, `{"resourceType":"Observation","id":"extra-1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, obs.Patient)}
	if _, err := tgt.Apply(ctx, ods, []dtm.Write{corrupt(obs), corrupt(org), {Type: "Condition", ID: cond.ID, Op: dtm.OpDelete}, extra}); err != nil {
		t.Fatal(err)
	}
	rep, err = target.Reconcile(ctx, client, tgt, ods, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"missing Condition/" + cond.ID,
		"different Observation/" + obs.ID,
		"extra Observation/extra-1",
		"different Organization/" + org.ID,
		quarantined,
	}
	got := differences(rep)
	if rep.Result != target.ReconcileMismatch || !cmp.Equal(sortStrings(got), sortStrings(want)) {
		t.Fatalf("after tampering: %s\n%s", rep.Result, cmp.Diff(sortStrings(want), sortStrings(got)))
	}
	if !strings.HasPrefix(rep.TargetTree, "advanced from seq") {
		t.Errorf("target digest %s, want advanced from the kept tree", rep.TargetTree)
	}
	fresh, err := target.Reconcile(ctx, client, tgt, ods, target.ReconcileOptions{State: tgt})
	if err != nil || fresh.TargetDigest.Root != rep.TargetDigest.Root || !cmp.Equal(differences(fresh), got) {
		t.Fatalf("computed afresh: %v, root %s, %v; advanced: root %s", err, fresh.TargetDigest.Root, differences(fresh), rep.TargetDigest.Root)
	}
	if rep.Summary[reconcile.Missing] != 1 || rep.Summary[reconcile.Extra] != 1 || rep.Summary[reconcile.Different] != 2 || rep.Summary[reconcile.Quarantined] != 1 {
		t.Errorf("summary %v", rep.Summary)
	}
	for _, d := range rep.Differences {
		if d.Resource == "Observation/"+obs.ID && (d.SourceVersion != obs.Version || d.TargetVersion != obs.Version+1 || d.SourceHash == d.TargetHash) {
			t.Errorf("different %+v", d)
		}
	}
}

func sortStrings(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestReconcile_SQLite(t *testing.T) {
	testReconcile(t, mustStore(t))
}

func TestReconcile_PostgreSQL(t *testing.T) {
	db, err := postgres.Open(context.Background(), pgtest.Start(t), postgres.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	testReconcile(t, db)
}

func TestReconcile_ErrNothingPulled(t *testing.T) {
	url, _ := startSource(t, 1)
	c, err := target.NewClient(url, target.ClientOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	tgt := mustStore(t)
	_, err = target.Reconcile(context.Background(), c, tgt, ods, target.ReconcileOptions{State: tgt})
	if dtm.ErrorCode(err) != dtm.EConflict {
		t.Fatalf("reconcile before any pull: %v, want a conflict error", err)
	}
}
