package bulk

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dtm-project/dtm"
)

// handleKickoff returns the $export kick-off handler for kind.
func (s *Server) handleKickoff(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.kickoff(w, r, kind); err != nil {
			s.fail(w, r, err)
		}
	}
}

// kickoff validates a kick-off request, pins its snapshot and stores the
// job, answering 202 with the status URL in Content-Location.
func (s *Server) kickoff(w http.ResponseWriter, r *http.Request, kind string) error {
	ctx := r.Context()
	q, request, err := s.kickoffParams(r)
	if err != nil {
		return err
	}
	p, err := parseParams(q, r.Header, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	principal := s.caller(r)
	practices, err := s.exportPractices(ctx, principal, kind, r.PathValue("ods"))
	if err != nil {
		return err
	}
	if p.Types, err = scopedTypes(principal, p.Types); err != nil {
		return err
	}
	active, err := s.cfg.Jobs.ActiveJobs(ctx, principal.Client)
	if err != nil {
		return fmt.Errorf("active jobs: %w", err)
	}
	if active >= s.cfg.MaxActiveJobs {
		w.Header().Set("Retry-After", retryAfter(max(5*s.cfg.RetryAfter, 5*time.Second)))
		s.record(r, dtm.AuditKickoff, r.PathValue("ods"), "", dtm.OutcomeDenied, "too many exports in progress")
		return dtm.Errorf(dtm.ETooMany, "too many exports in progress (at most %d); retry later", s.cfg.MaxActiveJobs)
	}
	if s.cfg.AllowRetrieval != nil {
		for _, ods := range practices {
			wait, err := s.cfg.AllowRetrieval(ctx, principal.Client, ods, s.cfg.Clock.Now())
			if err != nil {
				if wait > 0 {
					w.Header().Set("Retry-After", retryAfter(wait))
				}
				return err
			}
		}
	}
	since, until, err := s.pin(ctx, p)
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	job, err := s.cfg.Jobs.CreateJob(ctx, dtm.ExportJob{
		ID: rand.Text(), Client: principal.Client, Kind: kind, Practices: practices,
		Types: p.Types, Since: since, Until: until.Seq, TransactionTime: until.Time,
		Request: request, Lenient: p.Lenient, Status: dtm.JobAccepted, Progress: "accepted",
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.JobTTL),
	})
	if err != nil {
		return fmt.Errorf("create job: %w", err)
	}
	s.wakeWorker()
	s.cfg.Logger.InfoContext(ctx, "export accepted", "job", job.ID, "client", job.Client,
		"kind", kind, "practices", len(practices), "since", since, "until", until.Seq, "ignored", p.Ignored)
	w.Header().Set("Content-Location", s.statusURL(job.ID))
	writeOutcome(w, http.StatusAccepted, "information", "informational", "export accepted")
	return nil
}

// kickoffParams returns the request's parameters, the query merged with a
// POST body's Parameters resource, and the request URL recorded in the
// manifest: the URL as received for GET, and for POST the URL with the
// body's parameters folded into its query string.
func (s *Server) kickoffParams(r *http.Request) (url.Values, string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "", dtm.Errorf(dtm.EInvalid, "malformed query string")
	}
	if r.Method != http.MethodPost {
		return q, s.cfg.BaseURL + r.URL.RequestURI(), nil
	}
	defer r.Body.Close()
	body, err := readParameters(r.Body)
	if err != nil {
		return nil, "", err
	}
	for k, vs := range body {
		q[k] = append(q[k], vs...)
	}
	request := s.cfg.BaseURL + r.URL.EscapedPath()
	if len(q) > 0 {
		request += "?" + q.Encode()
	}
	return q, request, nil
}

// pin maps _since and _until to journal sequence numbers at kick-off, so
// that the export's transactionTime is the commit time of its last change
// whenever the job happens to run (HAPI sets it at job end, and loses
// changes committed while the job ran).
func (s *Server) pin(ctx context.Context, p exportParams) (since int64, until dtm.Snapshot, err error) {
	until, err = s.cfg.Journal.Head(ctx)
	if err != nil {
		return 0, until, fmt.Errorf("head: %w", err)
	}
	if !p.Until.IsZero() {
		at, err := s.cfg.Journal.SnapshotAt(ctx, p.Until)
		if err != nil {
			return 0, until, fmt.Errorf("snapshot at _until: %w", err)
		}
		if at.Seq < until.Seq {
			until = at
		}
	}
	if !p.Since.IsZero() {
		at, err := s.cfg.Journal.SnapshotAt(ctx, p.Since)
		if err != nil {
			return 0, until, fmt.Errorf("snapshot at _since: %w", err)
		}
		since = min(at.Seq, until.Seq)
	}
	return since, until, nil
}

// statusURL is the absolute status URL of a job.
func (s *Server) statusURL(id string) string { return s.cfg.BaseURL + "/fhir/_export/" + id }

// scopedTypes narrows the requested _type to what the caller's scopes
// allow: with per-type scopes, no _type means the allowed types, and a
// requested type outside them is refused.
func scopedTypes(p dtm.Principal, requested []string) ([]string, error) {
	if p.Types == nil {
		return requested, nil
	}
	if len(p.Types) == 0 {
		return nil, dtm.Errorf(dtm.EForbidden, "the access token's scopes allow no resource type")
	}
	if len(requested) == 0 {
		return slices.Clone(p.Types), nil
	}
	for _, t := range requested {
		if !p.CanReadType(t) {
			return nil, dtm.Errorf(dtm.EForbidden, "the access token's scopes do not allow reading %s", t)
		}
	}
	return requested, nil
}
