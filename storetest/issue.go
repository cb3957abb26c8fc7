package storetest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// IssuesOpener returns a new, empty dtm.Issues. It must arrange for the
// store to be closed when t ends (t.Cleanup); the suite never closes it.
type IssuesOpener func(t *testing.T) dtm.Issues

// RunIssues runs the conformance suite of dtm.Issues (data issues and their
// history) against the stores open returns, one new store per subtest.
func RunIssues(t *testing.T, open IssuesOpener) {
	t.Run("Create", func(t *testing.T) { testIssueCreate(t, open(t)) })
	t.Run("Key", func(t *testing.T) { testIssueKey(t, open(t)) })
	t.Run("Update", func(t *testing.T) { testIssueUpdate(t, open(t)) })
	t.Run("List", func(t *testing.T) { testIssueList(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testIssueConcurrent(t, open(t)) })
}

// issueEpoch is the time the issue suite starts at, whole microseconds so
// that every store keeps it exactly.
var issueEpoch = time.Date(2026, 3, 27, 16, 0, 0, 0, time.UTC)

var issueCmp = cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(dtm.DataIssue{}, "ID")}

// NewIssue returns an issue of practice raised by "tss" at at with the
// given key and resources, as the source's HTTP layer makes it.
func NewIssue(tb testing.TB, practice, key string, at time.Time, resources ...string) dtm.DataIssue {
	tb.Helper()
	i := dtm.DataIssue{
		Practice: practice, Key: key, Severity: "error", Category: dtm.IssueValidation, Rule: "nhs-number-check-digit",
		Title: "NHS number check digit", Text: "Patients with a wrong check digit",
		Resources: dtm.SortIssueResources(resources),
		Outcome:   []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value"}]}`),
	}
	if err := i.Apply(dtm.IssueAction{Action: dtm.IssueRaise, Actor: "tss", At: at}); err != nil {
		tb.Fatal(err)
	}
	return i
}

func mustCreateIssue(t *testing.T, s dtm.Issues, i dtm.DataIssue) dtm.DataIssue {
	t.Helper()
	got, err := s.CreateIssue(context.Background(), i)
	if err != nil {
		t.Fatalf("CreateIssue: %v", err)
	}
	return got
}

func testIssueCreate(t *testing.T, s dtm.Issues) {
	ctx := context.Background()
	var many []string
	for n := range 3000 {
		many = append(many, "Observation/obs-"+strconv.Itoa(n))
	}
	want := NewIssue(t, PracticeA, "", issueEpoch, many...)
	got := mustCreateIssue(t, s, want)
	if got.ID == "" {
		t.Fatal("no ID assigned")
	}
	if diff := cmp.Diff(want, got, issueCmp); diff != "" {
		t.Fatalf("CreateIssue returned (-want +got):\n%s", diff)
	}
	read, err := s.Issue(ctx, PracticeA, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("Issue returned (-created +read):\n%s", diff)
	}
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []string{"999999", "x", "", "01", got.ID + "0"} {
			if _, err := s.Issue(ctx, PracticeA, id); dtm.ErrorCode(err) != dtm.ENotFound {
				t.Errorf("Issue(%q): %v, want not-found", id, err)
			}
		}
		if _, err := s.Issue(ctx, PracticeB, got.ID); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Errorf("another practice's issue: %v, want not-found", err)
		}
		if _, err := s.UpdateIssue(ctx, PracticeB, got.ID, dtm.IssueAction{Action: dtm.IssueClose, At: issueEpoch}); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Errorf("UpdateIssue of another practice's issue: %v, want not-found", err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		bad := want
		bad.Severity = "dreadful"
		if _, err := s.CreateIssue(ctx, bad); dtm.ErrorCode(err) != dtm.EInvalid {
			t.Errorf("bad severity: %v", err)
		}
		unraised := dtm.DataIssue{Practice: PracticeA, Severity: "error", Category: dtm.IssueOther}
		if _, err := s.CreateIssue(ctx, unraised); dtm.ErrorCode(err) != dtm.EInvalid {
			t.Errorf("issue never raised: %v", err)
		}
	})
}

func testIssueKey(t *testing.T, s dtm.Issues) {
	ctx := context.Background()
	first := mustCreateIssue(t, s, NewIssue(t, PracticeA, "auto:validation:x", issueEpoch, "Patient/a"))
	if _, err := s.CreateIssue(ctx, NewIssue(t, PracticeA, "auto:validation:x", issueEpoch)); dtm.ErrorCode(err) != dtm.EConflict {
		t.Fatalf("second active issue with the key: %v, want conflict", err)
	}
	mustCreateIssue(t, s, NewIssue(t, PracticeB, "auto:validation:x", issueEpoch)) // another practice
	mustCreateIssue(t, s, NewIssue(t, PracticeA, "", issueEpoch))                  // no key
	mustCreateIssue(t, s, NewIssue(t, PracticeA, "", issueEpoch))
	if _, err := s.UpdateIssue(ctx, PracticeA, first.ID, dtm.IssueAction{Action: dtm.IssueClose, At: issueEpoch.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	mustCreateIssue(t, s, NewIssue(t, PracticeA, "auto:validation:x", issueEpoch.Add(2*time.Hour)))
	_, err := s.UpdateIssue(ctx, PracticeA, first.ID, dtm.IssueAction{Action: dtm.IssueReopen, At: issueEpoch.Add(3 * time.Hour)})
	if dtm.ErrorCode(err) != dtm.EConflict {
		t.Fatalf("reopening an issue whose key is taken: %v, want conflict", err)
	}
	if got, _ := s.Issue(ctx, PracticeA, first.ID); got.Status != dtm.IssueClosed || len(got.History) != 2 {
		t.Fatalf("failed reopen changed the issue: %s, %d events", got.Status, len(got.History))
	}
}

func testIssueUpdate(t *testing.T, s dtm.Issues) {
	ctx := context.Background()
	i := mustCreateIssue(t, s, NewIssue(t, PracticeA, "k", issueEpoch, "Patient/a", "Patient/b"))
	want := i
	steps := []dtm.IssueAction{
		{Action: dtm.IssueAcknowledge, Actor: "sss", Text: "on it"},
		{Action: dtm.IssueUpdate, Actor: "tss", Resources: []string{"Patient/b", "Patient/c"}, ResourceCount: 4,
			Outcome: []byte(`{"resourceType":"OperationOutcome","issue":[]}`), Severity: "warning", Title: "Renamed"},
		{Action: dtm.IssueResolve, Actor: "sss"},
		{Action: dtm.IssueReopen, Actor: "tss", Text: "still there"},
		{Action: dtm.IssueClose, Actor: "tss"},
	}
	for n, a := range steps {
		a.At = issueEpoch.Add(time.Duration(n+1) * time.Hour)
		got, err := s.UpdateIssue(ctx, PracticeA, i.ID, a)
		if err != nil {
			t.Fatalf("%s: %v", a.Action, err)
		}
		if err := want.Apply(a); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%s returned (-want +got):\n%s", a.Action, diff)
		}
		read, err := s.Issue(ctx, PracticeA, i.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, read, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after %s, Issue returned (-want +got):\n%s", a.Action, diff)
		}
	}
	_, err := s.UpdateIssue(ctx, PracticeA, i.ID, dtm.IssueAction{Action: dtm.IssueAcknowledge, At: issueEpoch.Add(time.Hour)})
	if dtm.ErrorCode(err) != dtm.EConflict {
		t.Fatalf("acknowledging a closed issue: %v, want conflict", err)
	}
}

func testIssueList(t *testing.T, s dtm.Issues) {
	ctx := context.Background()
	var ids []string
	for n := range 12 {
		i := NewIssue(t, []string{PracticeA, PracticeB}[n%2], "", issueEpoch, "Patient/a")
		if n%3 == 0 {
			i.Rule, i.Category = "r4-structure", dtm.IssueLoad
		}
		ids = append(ids, mustCreateIssue(t, s, i).ID)
	}
	if _, err := s.UpdateIssue(ctx, PracticeA, ids[0], dtm.IssueAction{Action: dtm.IssueClose, At: issueEpoch}); err != nil {
		t.Fatal(err)
	}
	list := func(q dtm.IssueQuery) []string {
		t.Helper()
		is, err := s.ListIssues(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range is {
			if i.History != nil || i.Resources != nil || i.Outcome != nil || i.ResourceCount != 1 || i.RaisedAt.IsZero() {
				t.Fatalf("listed issue %+v: want no history, resources or outcome, and the rest", i)
			}
			out = append(out, i.ID)
		}
		return out
	}
	pick := func(ns ...int) []string {
		var out []string
		for _, n := range ns {
			out = append(out, ids[n])
		}
		return out
	}
	tests := []struct {
		q    dtm.IssueQuery
		want []string
	}{
		{dtm.IssueQuery{}, ids},
		{dtm.IssueQuery{Practice: PracticeA}, pick(0, 2, 4, 6, 8, 10)},
		{dtm.IssueQuery{Practice: PracticeA, Statuses: []string{dtm.IssueOpen}}, pick(2, 4, 6, 8, 10)},
		{dtm.IssueQuery{Statuses: []string{dtm.IssueClosed, dtm.IssueResolved}}, pick(0)},
		{dtm.IssueQuery{Rule: "r4-structure"}, pick(0, 3, 6, 9)},
		{dtm.IssueQuery{Category: dtm.IssueLoad, Practice: PracticeB}, pick(3, 9)},
		{dtm.IssueQuery{Limit: 3}, pick(0, 1, 2)},
		{dtm.IssueQuery{Key: "none"}, nil},
	}
	for _, tt := range tests {
		if got := list(tt.q); !cmp.Equal(got, tt.want, cmpopts.EquateEmpty()) {
			t.Errorf("ListIssues(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func testIssueConcurrent(t *testing.T, s dtm.Issues) {
	ctx := context.Background()
	i := mustCreateIssue(t, s, NewIssue(t, PracticeA, "", issueEpoch))
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateIssue(ctx, PracticeA, i.ID, dtm.IssueAction{Action: dtm.IssueComment, Actor: "c",
				At: issueEpoch.Add(time.Duration(k) * time.Second), Text: fmt.Sprint("note ", k)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Issue(ctx, PracticeA, i.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.History) != n+1 {
		t.Fatalf("%d events after %d concurrent comments, want %d", len(got.History), n, n+1)
	}
	for k, e := range got.History {
		if e.Seq != k+1 {
			t.Fatalf("event %d has seq %d", k, e.Seq)
		}
	}
}
