package cutover_test

import (
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/cutover"
	"github.com/dtm-project/dtm/storetest"
)

func planRequest(date string) cutover.PlanRequest {
	return cutover.PlanRequest{Practice: testODS, SourceSupplier: "Old Systems Ltd", TargetSupplier: "New Systems plc",
		SourceURL: "https://source.example/", Date: date, By: "Pat Planner"}
}

func TestNewPlan(t *testing.T) {
	now := utc("2026-03-01T10:00:00Z")
	t.Run("OK", func(t *testing.T) {
		p, err := cutover.NewPlan(planRequest("2026-03-27"), now)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != "A81001-2026-03-27" || p.Window().Hours() != 62 || p.Status != dtm.PlanActive ||
			p.SourceURL != "https://source.example" || !p.ReadinessDeadline.Equal(utc("2026-03-13T17:00:00Z")) {
			t.Errorf("plan = %+v", p)
		}
	})
	for _, tc := range []struct {
		name string
		edit func(*cutover.PlanRequest)
		want string
	}{
		{"NotFriday", func(r *cutover.PlanRequest) { r.Date = "2026-03-26" }, "is a Thursday"},
		{"Past", func(r *cutover.PlanRequest) { r.Date = "2026-02-27" }, "in the past"},
		{"DeadlinePassed", func(r *cutover.PlanRequest) { r.Date = "2026-03-13" }, "T6 requires it by Fri 27 Feb 2026 17:00 GMT"},
		{"DeadlinePassedSuggests", func(r *cutover.PlanRequest) { r.Date = "2026-03-13" }, "earliest possible date is 2026-03-20"},
		{"BadODS", func(r *cutover.PlanRequest) { r.Practice = "a81001" }, "ODS"},
		{"NoSupplier", func(r *cutover.PlanRequest) { r.TargetSupplier = " " }, "supplier"},
		{"BadURL", func(r *cutover.PlanRequest) { r.SourceURL = "source.example" }, "URL"},
		{"NoAuthor", func(r *cutover.PlanRequest) { r.By = "" }, "who"},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			req := planRequest("2026-03-27")
			tc.edit(&req)
			_, err := cutover.NewPlan(req, now)
			if dtm.ErrorCode(err) != dtm.EInvalid || !strings.Contains(dtm.ErrorMessage(err), tc.want) {
				t.Fatalf("err = %v, want invalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestService_CreatePlan(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, t.TempDir()+"/t.db", nil)
	clock := storetest.NewClock(utc("2026-03-01T10:00:00Z"))
	svc := &cutover.Service{Store: db, State: db, Clock: clock, Logger: quiet()}
	first, err := svc.CreatePlan(ctx, planRequest("2026-03-27"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("Idempotent", func(t *testing.T) {
		again, err := svc.CreatePlan(ctx, planRequest("2026-03-27"))
		if err != nil || again.ID != first.ID || !again.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("again = %+v, %v", again, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		if _, err := svc.CreatePlan(ctx, planRequest("2026-04-03")); dtm.ErrorCode(err) != dtm.EConflict {
			t.Fatalf("err = %v, want conflict", err)
		}
	})
	t.Run("Replace", func(t *testing.T) {
		req := planRequest("2026-04-03")
		req.Replace = true
		p, err := svc.CreatePlan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		active, err := svc.ActivePlan(ctx, testODS)
		if err != nil || active.ID != p.ID {
			t.Fatalf("active = %+v, %v", active, err)
		}
		old, err := db.CutoverPlan(ctx, first.ID)
		if err != nil || old.Status != dtm.PlanCancelled {
			t.Fatalf("old = %+v, %v", old, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := svc.ActivePlan(ctx, "B12345"); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v", err)
		}
	})
}
