package dtm_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

var t0 = time.Date(2026, 3, 27, 16, 0, 0, 0, time.UTC) // a Friday, 16:00 in London (GMT)

func raised(tb testing.TB) dtm.DataIssue {
	tb.Helper()
	i := dtm.DataIssue{Practice: "A81001", Severity: "error", Category: dtm.IssueValidation, Rule: "nhs-number-check-digit",
		Resources: []string{"Patient/b", "Patient/a"}}
	i.Resources = dtm.SortIssueResources(i.Resources)
	if err := i.Validate(); err != nil {
		tb.Fatal(err)
	}
	if err := i.Apply(dtm.IssueAction{Action: dtm.IssueRaise, Actor: "tss", At: t0}); err != nil {
		tb.Fatal(err)
	}
	return i
}

func TestDataIssue_Apply(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		i := raised(t)
		if i.Status != dtm.IssueOpen || i.RaisedBy != "tss" || !i.AwaitingSince.Equal(t0) || i.ResourceCount != 2 {
			t.Fatalf("raised %+v", i)
		}
		steps := []struct {
			action, text, want string
		}{
			{dtm.IssueAcknowledge, "", dtm.IssueAcknowledged},
			{dtm.IssueComment, "looking", dtm.IssueAcknowledged},
			{dtm.IssueAnswer, "which code?", dtm.IssueAnswered},
			{dtm.IssueResolve, "fixed", dtm.IssueResolved},
			{dtm.IssueReopen, "still wrong", dtm.IssueOpen},
			{dtm.IssueReject, "that is right", dtm.IssueRejected},
			{dtm.IssueClose, "", dtm.IssueClosed},
			{dtm.IssueReopen, "", dtm.IssueOpen},
		}
		at := t0
		for _, s := range steps {
			at = at.Add(time.Hour)
			actor := "tss"
			if dtm.IssueActionBySource(s.action) {
				actor = "sss"
			}
			if err := i.Apply(dtm.IssueAction{Action: s.action, Actor: actor, At: at, Text: s.text}); err != nil {
				t.Fatalf("%s: %v", s.action, err)
			}
			if i.Status != s.want {
				t.Fatalf("%s: status %s, want %s", s.action, i.Status, s.want)
			}
		}
		if len(i.History) != len(steps)+1 || i.History[1].From != dtm.IssueOpen || i.History[1].To != dtm.IssueAcknowledged || i.History[1].Seq != 2 {
			t.Fatalf("history %+v", i.History)
		}
		// Reopened at the last step: waiting again, no response yet.
		if !i.RespondedAt.IsZero() || !i.AwaitingSince.Equal(at) || !i.ClosedAt.IsZero() {
			t.Fatalf("after reopen: responded %v awaiting %v closed %v", i.RespondedAt, i.AwaitingSince, i.ClosedAt)
		}
	})
	t.Run("Update", func(t *testing.T) {
		i := raised(t)
		err := i.Apply(dtm.IssueAction{Action: dtm.IssueUpdate, Actor: "tss", At: t0.Add(time.Minute),
			Resources: []string{"Patient/c", "Patient/a", "Patient/c"}, ResourceCount: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(i.Resources, []string{"Patient/a", "Patient/c"}) || i.ResourceCount != 5 || i.Status != dtm.IssueOpen {
			t.Fatalf("updated %+v", i)
		}
		if h := i.History[1]; h.Text != "resources 2 → 5 (1 no longer affected, 1 newly affected)" {
			t.Errorf("update summary %q", h.Text)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		i := raised(t)
		before := len(i.History)
		for _, a := range []string{dtm.IssueReopen, dtm.IssueRaise} {
			if err := i.Apply(dtm.IssueAction{Action: a, At: t0}); dtm.ErrorCode(err) != dtm.EConflict {
				t.Errorf("%s on an open issue: %v, want conflict", a, err)
			}
		}
		i.Apply(dtm.IssueAction{Action: dtm.IssueClose, At: t0})
		for _, a := range []string{dtm.IssueAcknowledge, dtm.IssueResolve, dtm.IssueClose, dtm.IssueUpdate} {
			if err := i.Apply(dtm.IssueAction{Action: a, At: t0}); dtm.ErrorCode(err) != dtm.EConflict {
				t.Errorf("%s on a closed issue: %v, want conflict", a, err)
			}
		}
		if len(i.History) != before+1 {
			t.Errorf("failed actions changed history: %d events", len(i.History))
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		i := raised(t)
		for _, a := range []dtm.IssueAction{
			{Action: "frobnicate", At: t0},
			{Action: dtm.IssueAnswer, At: t0},
			{Action: dtm.IssueReject, At: t0},
			{Action: dtm.IssueComment, At: t0},
			{Action: dtm.IssueAcknowledge},
			{Action: dtm.IssueUpdate, At: t0, Resources: []string{"not a resource"}},
			{Action: dtm.IssueUpdate, At: t0, Outcome: []byte(`{"resourceType":"Patient"}`)},
			{Action: dtm.IssueUpdate, At: t0, Severity: "bad"},
		} {
			if err := i.Apply(a); dtm.ErrorCode(err) != dtm.EInvalid {
				t.Errorf("%+v: %v, want invalid", a, err)
			}
		}
	})
}

func TestDataIssue_Validate(t *testing.T) {
	ok := dtm.DataIssue{Practice: "A81001", Severity: "warning", Category: dtm.IssueOther,
		Resources: []string{"Observation/abc-1.2"}, ResourceCount: 1,
		Outcome: []byte(`{"resourceType":"OperationOutcome","issue":[]}`)}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*dtm.DataIssue){
		func(i *dtm.DataIssue) { i.Practice = "x" },
		func(i *dtm.DataIssue) { i.Severity = "" },
		func(i *dtm.DataIssue) { i.Category = "gossip" },
		func(i *dtm.DataIssue) { i.Resources = []string{"Observation/"} },
		func(i *dtm.DataIssue) { i.Resources = []string{"/x"} },
		func(i *dtm.DataIssue) { i.Resources = []string{"observation/x"} },
		func(i *dtm.DataIssue) { i.ResourceCount = -1 },
		func(i *dtm.DataIssue) { i.Outcome = []byte(`[]`) },
	}
	for n, f := range bad {
		i := ok
		f(&i)
		if err := i.Validate(); dtm.ErrorCode(err) != dtm.EInvalid {
			t.Errorf("case %d: %v, want invalid", n, err)
		}
	}
}

func TestIssuePolicy_AcknowledgeBy(t *testing.T) {
	lon := dtm.London()
	at := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, lon)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		policy   dtm.IssuePolicy
		from, by string
	}{
		{dtm.IssuePolicy{}, "2026-03-24 10:00", "2026-03-25 10:00"},                     // Tuesday → Wednesday
		{dtm.IssuePolicy{}, "2026-03-27 16:00", "2026-03-30 16:00"},                     // Friday → Monday, across the DST change
		{dtm.IssuePolicy{}, "2026-03-28 10:00", "2026-03-31 00:00"},                     // Saturday → Tuesday 00:00
		{dtm.IssuePolicy{}, "2026-03-29 23:59", "2026-03-31 00:00"},                     // Sunday
		{dtm.IssuePolicy{AcknowledgeWithin: 3}, "2026-10-22 09:30", "2026-10-27 09:30"}, // Thursday + 3 (BST → GMT)
		{dtm.IssuePolicy{Holidays: []string{"2026-12-28"}}, "2026-12-24 12:00", "2026-12-25 12:00"},
		{dtm.IssuePolicy{Holidays: []string{"2026-12-25", "2026-12-28"}}, "2026-12-24 12:00", "2026-12-29 12:00"},
	}
	for _, tt := range tests {
		if got := tt.policy.AcknowledgeBy(at(tt.from)); !got.Equal(at(tt.by)) {
			t.Errorf("%+v from %s: %s, want %s", tt.policy, tt.from, got.In(lon), tt.by)
		}
	}
}

func TestIssuePolicy_Timing(t *testing.T) {
	var p dtm.IssuePolicy
	i := raised(t) // Friday 16:00 → due Monday 16:00 BST (15:00 UTC)
	due := time.Date(2026, 3, 30, 15, 0, 0, 0, time.UTC)
	if tm := p.Timing(i, due); tm.Overdue || !tm.Due.Equal(due) || tm.WaitingOn != "source" {
		t.Fatalf("at due: %+v", tm)
	}
	if tm := p.Timing(i, due.Add(time.Second)); !tm.Overdue {
		t.Fatalf("after due: %+v", tm)
	}
	i.Apply(dtm.IssueAction{Action: dtm.IssueAcknowledge, At: due.Add(time.Hour)})
	tm := p.Timing(i, due.Add(48*time.Hour))
	if tm.Overdue || !tm.Late || tm.ResponseTime != due.Add(time.Hour).Sub(t0) {
		t.Fatalf("acknowledged late: %+v", tm)
	}
	i.Apply(dtm.IssueAction{Action: dtm.IssueResolve, At: due.Add(2 * time.Hour)})
	if tm := p.Timing(i, due); tm.WaitingOn != "target" {
		t.Fatalf("resolved: %+v", tm)
	}
}
