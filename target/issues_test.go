package target_test

import (
	"bytes"
	"context"
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
	"github.com/dtm-project/dtm/source"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/synth"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// dtmSource is a complete source on loopback, as "dtm source serve --auth
// none" wires it: the Bulk Data server, the control plane (status, ingest)
// and the issue and digest endpoints, over a SQLite store holding a
// generated practice.
type dtmSource struct {
	db  *sqlite.DB
	url string
	// records are the generated resources by "Type/id", as loaded.
	records map[string][]byte
	order   []string
}

// startSource starts a source holding a generated practice of n patients,
// after edit (which may change records) has run over it.
func startSource(tb testing.TB, n int, edit func(s *dtmSource)) *dtmSource {
	tb.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "source.db"), sqlite.Options{Logger: quietLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if _, err := db.CreatePractice(ctx, dtm.Practice{ODS: testODS, Name: "Test Surgery"}); err != nil {
		tb.Fatal(err)
	}
	s := &dtmSource{db: db, records: map[string][]byte{}}
	err = synth.Generate(ctx, synth.Options{Practice: testODS, Patients: n, Seed: 11}, func(typ string, b []byte) error {
		h, err := fhir.ParseHeader(b)
		if err != nil {
			return err
		}
		k := typ + "/" + h.ID
		s.records[k] = bytes.Clone(b)
		s.order = append(s.order, k)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if edit != nil {
		edit(s)
	}
	s.put(tb, s.order...)
	mux := http.NewServeMux()
	h := &source.Handler{Store: db, Ingester: &source.Ingester{Journal: db, Logger: quietLogger()}, Clock: dtm.SystemClock{}, Logger: quietLogger()}
	h.Routes(mux)
	h.IssueRoutes(mux)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	bs := bulk.NewServer(bulk.Config{Journal: db, Practices: db, Jobs: db, BaseURL: srv.URL, Logger: quietLogger(),
		MaxFileResources: 5000, MaxActiveJobs: 20,
		Caller: func(r *http.Request) (string, []string) { return "", []string{dtm.AllPractices} }})
	mux.Handle("/fhir/", bs.Handler())
	all := dtm.Principal{Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), all)))
	})
	s.url = srv.URL
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bs.Run(ctx); close(done) }()
	tb.Cleanup(func() { srv.Close(); cancel(); <-done })
	return s
}

// put applies the current records of keys to the source, as ingest does.
func (s *dtmSource) put(tb testing.TB, keys ...string) {
	tb.Helper()
	var batch []dtm.Write
	for i, k := range keys {
		b := s.records[k]
		typ, id, _ := strings.Cut(k, "/")
		patient, _ := fhir.Compartment(typ, b)
		batch = append(batch, dtm.Write{Type: typ, ID: id, Op: dtm.OpUpsert, JSON: b, Patient: patient,
			Member: typ == "Patient" && fhir.PatientActive(b)})
		if len(batch) == 1000 || i == len(keys)-1 {
			if _, err := s.db.Apply(context.Background(), testODS, batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// remove deletes resources at the source.
func (s *dtmSource) remove(tb testing.TB, keys ...string) {
	tb.Helper()
	var ws []dtm.Write
	for _, k := range keys {
		typ, id, _ := strings.Cut(k, "/")
		ws = append(ws, dtm.Write{Type: typ, ID: id, Op: dtm.OpDelete})
	}
	if _, err := s.db.Apply(context.Background(), testODS, ws); err != nil {
		tb.Fatal(err)
	}
}

// pick returns the first n keys of type typ (after skip) whose record
// matches re.
func (s *dtmSource) pick(typ string, re *regexp.Regexp, skip, n int) []string {
	var out []string
	for _, k := range s.order {
		if strings.HasPrefix(k, typ+"/") && re.Match(s.records[k]) {
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, k)
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// corrupt rewrites the first match of re in each record with fn and
// returns the original records, to restore later.
func (s *dtmSource) corrupt(keys []string, re *regexp.Regexp, fn func(m []byte) []byte) map[string][]byte {
	orig := map[string][]byte{}
	for _, k := range keys {
		orig[k] = s.records[k]
		loc := re.FindIndex(s.records[k])
		b := slices.Concat(s.records[k][:loc[0]], fn(s.records[k][loc[0]:loc[1]]), s.records[k][loc[1]:])
		s.records[k] = b
	}
	return orig
}

// bumpLastDigit changes the last digit of m, which breaks an NHS number's
// modulus-11 check and a SNOMED CT id's Verhoeff check.
func bumpLastDigit(m []byte) []byte {
	m = bytes.Clone(m)
	i := bytes.LastIndexAny(m, "0123456789")
	m[i] = '0' + (m[i]-'0'+1)%10
	return m
}

var (
	nhsNumber  = regexp.MustCompile(`"https://fhir.nhs.uk/Id/nhs-number","value":"\d{10}"`)
	snomedCode = regexp.MustCompile(`"system":"http://snomed.info/sct","code":"\d{6,18}"`)
	apptRef    = regexp.MustCompile(`"appointment":\[\{"reference":"Appointment/[^"]+"`)
)

// resolvingPuller returns a puller validating with ukcore, resolving
// references against the practice's own resources (as loaded at the
// source), so that a dangling reference is an error.
func resolvingPuller(tb testing.TB, src *dtmSource, db *sqlite.DB) *target.Puller {
	tb.Helper()
	known := map[string]bool{}
	for k := range src.records {
		known[k] = true
	}
	v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: testODS, Resolve: func(ref string) bool { return known[ref] }})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := target.NewClient(src.url, target.ClientOptions{Logger: quietLogger(), MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	p, err := target.NewPuller(target.Config{Store: db, State: db, Client: c, Validator: v, WorkDir: tb.TempDir(),
		Logger: quietLogger(), BatchSize: 500})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// issuesAt returns the source's issues by key, with their resources.
func issuesAt(tb testing.TB, src *dtmSource) map[string]dtm.DataIssue {
	tb.Helper()
	all, err := src.db.ListIssues(context.Background(), dtm.IssueQuery{Practice: testODS})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]dtm.DataIssue{}
	for _, i := range all {
		full, err := src.db.Issue(context.Background(), testODS, i.ID)
		if err != nil {
			tb.Fatal(err)
		}
		if _, dup := out[i.Key]; dup && full.Status != dtm.IssueClosed {
			tb.Fatalf("two issues with key %s", i.Key)
		}
		if _, dup := out[i.Key]; !dup || full.Status != dtm.IssueClosed {
			out[i.Key] = full
		}
	}
	return out
}

func pullAndReport(tb testing.TB, p *target.Puller) target.RaiseResult {
	tb.Helper()
	ctx := context.Background()
	if _, err := p.Pull(ctx, testODS); err != nil {
		tb.Fatal(err)
	}
	_, res, err := p.ReportIssues(ctx, testODS)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func TestPuller_ReportIssues(t *testing.T) {
	var badNHS, badCode, dangling []string
	var origNHS, origCode, origRef map[string][]byte
	src := startSource(t, map[bool]int{false: 12, true: 4}[raceEnabled], func(s *dtmSource) {
		badNHS = s.pick("Patient", nhsNumber, 0, 3)
		origNHS = s.corrupt(badNHS, nhsNumber, bumpLastDigit)
		badCode = s.pick("Encounter", snomedCode, 0, 4)
		origCode = s.corrupt(badCode, snomedCode, bumpLastDigit)
		dangling = s.pick("Encounter", apptRef, 10, 2)
		origRef = s.corrupt(dangling, apptRef, func([]byte) []byte { return []byte(`"appointment":[{"reference":"Appointment/gone-1"`) })
	})
	tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	p := resolvingPuller(t, src, tgt)
	keyNHS := "auto:validation:" + ukcore.RuleNHSNumberCheckDigit
	keyCode := "auto:validation:" + ukcore.RuleSCTID
	keyRef := "auto:validation:" + ukcore.RuleReferenceUnresolved
	want := map[string][]string{keyNHS: badNHS, keyCode: badCode, keyRef: dangling}

	first := pullAndReport(t, p)
	issues := issuesAt(t, src)
	if len(first.Raised) != 3 || len(issues) != 3 {
		t.Fatalf("first pull raised %+v; source holds %d issues: %v", first, len(issues), keys(issues))
	}
	for key, rs := range want {
		i := issues[key]
		if i.Status != dtm.IssueOpen || !slices.Equal(i.Resources, dtm.SortIssueResources(slices.Clone(rs))) || i.ResourceCount != len(rs) {
			t.Errorf("%s: status %s resources %v, want open with %v", key, i.Status, i.Resources, rs)
		}
		if !bytes.Contains(i.Outcome, []byte(strings.TrimPrefix(key, "auto:validation:")+": ")) || i.Severity != "error" || i.RaisedBy != "" {
			t.Errorf("%s: outcome %s severity %s raised by %q", key, i.Outcome, i.Severity, i.RaisedBy)
		}
	}

	t.Run("Deduplicated", func(t *testing.T) {
		res := pullAndReport(t, p)
		if len(res.Raised)+len(res.Updated)+len(res.Closed) != 0 || len(res.Unchanged) != 3 {
			t.Fatalf("a pull with nothing new did %+v", res)
		}
	})
	t.Run("PartlyFixed", func(t *testing.T) {
		src.records[badNHS[0]] = origNHS[badNHS[0]]
		src.put(t, badNHS[0])
		res := pullAndReport(t, p)
		i := issuesAt(t, src)[keyNHS]
		if len(res.Updated) != 1 || res.Updated[0] != i.ID || len(i.Resources) != 2 || i.Status != dtm.IssueOpen {
			t.Fatalf("after fixing one patient: %+v; issue %+v", res, i)
		}
		if h := i.History[len(i.History)-1]; h.Action != dtm.IssueUpdate || !strings.Contains(h.Text, "3 → 2") {
			t.Errorf("update recorded as %+v", h)
		}
	})
	t.Run("Fixed", func(t *testing.T) {
		// The source acknowledges and resolves, then fixes: corrects the
		// records, and deletes one of the dangling references' resources.
		ctx := context.Background()
		for _, key := range []string{keyNHS, keyCode} {
			id := issuesAt(t, src)[key].ID
			for _, a := range []string{dtm.IssueAcknowledge, dtm.IssueResolve} {
				if _, err := src.db.UpdateIssue(ctx, testODS, id, dtm.IssueAction{Action: a, Actor: "sss", At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		var fix []string
		for k, b := range origNHS {
			src.records[k] = b
			fix = append(fix, k)
		}
		for k, b := range origCode {
			src.records[k] = b
			fix = append(fix, k)
		}
		src.records[dangling[0]] = origRef[dangling[0]]
		fix = append(fix, dangling[0])
		src.put(t, fix...)
		src.remove(t, dangling[1])
		res := pullAndReport(t, p)
		if len(res.Closed) != 3 || len(res.Raised) != 0 {
			t.Fatalf("after fixing everything: %+v", res)
		}
		for key, i := range issuesAt(t, src) {
			last := i.History[len(i.History)-1]
			if i.Status != dtm.IssueClosed || last.Action != dtm.IssueClose || !strings.Contains(last.Text, "no resource fails") {
				t.Errorf("%s: %s, last event %+v", key, i.Status, last)
			}
		}
		if res := pullAndReport(t, p); len(res.Raised)+len(res.Updated)+len(res.Closed)+len(res.Unchanged) != 0 {
			t.Fatalf("with nothing failing, a pull did %+v", res)
		}
	})
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}
