package cutover

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Service records plans and confirmations and assesses readiness. Store,
// State and Clock are required; Issues and Logger are optional. It is safe
// for concurrent use.
type Service struct {
	// Store keeps plans, confirmations, runs and reconciliation outcomes.
	Store dtm.Cutovers
	// State is the target's pull bookkeeping: the facts readiness is
	// assessed from.
	State dtm.TargetState
	// Issues, when set, lists the practice's data issues (T5, S6); without
	// it the issues check reports that no evidence was recorded.
	Issues IssueLister
	Clock  dtm.Clock
	Logger *slog.Logger
	// Options tune the readiness checks; the zero value is the default.
	Options Options
}

// IssueLister lists data issues; dtm.Issues is one.
type IssueLister interface {
	ListIssues(ctx context.Context, q dtm.IssueQuery) ([]dtm.DataIssue, error)
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// PlanRequest is what a person asks to plan.
type PlanRequest struct {
	Practice       string
	SourceSupplier string
	TargetSupplier string
	SourceURL      string
	Date           string // the cutover Friday, YYYY-MM-DD
	By             string // who records the plan
	// Replace cancels the practice's active plan for another date.
	Replace bool
}

// NewPlan validates req at now and returns the plan it describes (not
// stored). It returns an EInvalid error naming the reason when the plan is
// impossible: a malformed field, a date that is not a Friday, a date in the
// past, or a readiness deadline (T6, 14 days before) already passed.
func NewPlan(req PlanRequest, now time.Time) (dtm.Plan, error) {
	switch {
	case !dtm.ValidODS(req.Practice):
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid, "practice %q is not an ODS code", req.Practice)
	case strings.TrimSpace(req.SourceSupplier) == "" || strings.TrimSpace(req.TargetSupplier) == "":
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid, "both the source and the target supplier must be named")
	case strings.TrimSpace(req.By) == "":
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid, "a plan must say who recorded it")
	}
	if u, err := url.Parse(req.SourceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid, "source URL %q must be an absolute http(s) URL", req.SourceURL)
	}
	w, err := NewWindow(req.Date)
	if err != nil {
		return dtm.Plan{}, err
	}
	today := now.In(dtm.London()).Format(time.DateOnly)
	if req.Date < today || !now.Before(w.Start) {
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid, "cutover date %s is in the past (today is %s); the earliest possible is %s",
			req.Date, today, EarliestDate(now))
	}
	if !now.Before(w.ReadinessDeadline) {
		return dtm.Plan{}, dtm.Errorf(dtm.EInvalid,
			"cutover date %s leaves no time to confirm readiness: T6 requires it by %s, 14 days before, which has passed; the earliest possible date is %s",
			req.Date, Local(w.ReadinessDeadline), EarliestDate(now))
	}
	return dtm.Plan{
		ID: req.Practice + "-" + req.Date, Practice: req.Practice,
		SourceSupplier: strings.TrimSpace(req.SourceSupplier), TargetSupplier: strings.TrimSpace(req.TargetSupplier),
		SourceURL: strings.TrimRight(req.SourceURL, "/"), Date: req.Date,
		WindowStart: w.Start, GoLive: w.GoLive, ReadinessDeadline: w.ReadinessDeadline,
		Status: dtm.PlanActive, CreatedBy: strings.TrimSpace(req.By), CreatedAt: now, UpdatedAt: now,
	}, nil
}

// CreatePlan validates and stores a plan. Planning the same practice and
// date again returns the stored plan unchanged. It returns NewPlan's
// EInvalid errors, and an EConflict error when the practice has an active
// plan for another date and req.Replace is false (with Replace, that plan
// is cancelled).
func (s *Service) CreatePlan(ctx context.Context, req PlanRequest) (dtm.Plan, error) {
	p, err := NewPlan(req, s.Clock.Now())
	if err != nil {
		return dtm.Plan{}, err
	}
	if cur, err := s.ActivePlan(ctx, req.Practice); err == nil {
		if cur.ID == p.ID {
			return cur, nil
		}
		if !req.Replace {
			return dtm.Plan{}, dtm.Errorf(dtm.EConflict, "practice %s already has an active plan for %s; replace it explicitly", req.Practice, cur.Date)
		}
		cur.Status, cur.UpdatedAt = dtm.PlanCancelled, p.CreatedAt
		if err := s.Store.SaveCutoverPlan(ctx, cur); err != nil {
			return dtm.Plan{}, fmt.Errorf("cancel plan %s: %w", cur.ID, err)
		}
		s.log().Info("cutover plan cancelled", "plan", cur.ID, "by", req.By)
	} else if dtm.ErrorCode(err) != dtm.ENotFound {
		return dtm.Plan{}, err
	}
	if err := s.Store.SaveCutoverPlan(ctx, p); err != nil {
		return dtm.Plan{}, fmt.Errorf("create plan: %w", err)
	}
	s.log().Info("cutover plan recorded", "plan", p.ID, "window_start", p.WindowStart, "go_live", p.GoLive,
		"window", p.Window(), "readiness_deadline", p.ReadinessDeadline, "by", p.CreatedBy)
	return p, nil
}

// ActivePlan returns the practice's newest plan that is not cancelled
// (active, live or rolled back), or an ENotFound error.
func (s *Service) ActivePlan(ctx context.Context, practice string) (dtm.Plan, error) {
	return ActivePlan(ctx, s.Store, practice)
}

// ActivePlan returns the practice's newest plan that is not cancelled, or
// an ENotFound error.
func ActivePlan(ctx context.Context, store dtm.Cutovers, practice string) (dtm.Plan, error) {
	ps, err := store.CutoverPlans(ctx, practice)
	if err != nil {
		return dtm.Plan{}, fmt.Errorf("active plan: %w", err)
	}
	for _, p := range ps {
		if p.Status != dtm.PlanCancelled {
			return p, nil
		}
	}
	return dtm.Plan{}, dtm.Errorf(dtm.ENotFound, "practice %s has no cutover plan", practice)
}
