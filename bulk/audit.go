package bulk

import (
	"net/http"

	"github.com/dtm-project/dtm"
)

// audited wraps a handler so that every request to it is recorded in the
// audit log with its outcome, when an audit log is configured.
func (s *Server) audited(action string, h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Audit == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		outcome := dtm.OutcomeSuccess
		switch {
		case rec.status >= 500:
			outcome = dtm.OutcomeError
		case rec.status >= 400:
			outcome = dtm.OutcomeDenied
		}
		detail := r.PathValue("file")
		if id := r.PathValue("id"); id != "" {
			detail = "Binary/" + id
		}
		s.record(r, action, "", r.PathValue("job"), outcome, detail)
	}
}

// record writes one audit event; a failure to record is logged, since the
// request itself has been answered.
func (s *Server) record(r *http.Request, action, practice, job, outcome, detail string) {
	if s.cfg.Audit == nil {
		return
	}
	e := dtm.AuditEvent{
		Time: s.cfg.Clock.Now(), Client: s.caller(r).Client, Action: action,
		Practice: practice, Job: job, Outcome: outcome, Detail: detail, Remote: r.RemoteAddr,
	}
	if err := s.cfg.Audit.Record(r.Context(), e); err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "audit record failed", "action", action, "err", err)
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
