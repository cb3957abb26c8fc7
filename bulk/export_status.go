package bulk

import (
	"fmt"
	"net/http"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// handleStatus answers a status poll: 202 with X-Progress and Retry-After
// while the export is planned, 200 with the manifest when complete, 500
// with an OperationOutcome when it failed.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	job, err := s.ownedJob(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch job.Status {
	case dtm.JobComplete:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Expires", job.ExpiresAt.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		w.Write(renderManifest(&job, s.cfg.BaseURL, s.cfg.RequiresAccessToken))
	case dtm.JobFailed:
		writeOutcome(w, http.StatusInternalServerError, "error", fhir.IssueCode(dtm.EInternal), job.Error)
	default:
		w.Header().Set("X-Progress", job.Progress)
		w.Header().Set("Retry-After", retryAfter(s.cfg.RetryAfter))
		w.WriteHeader(http.StatusAccepted)
	}
}

// handleCancel cancels an export (DELETE on the status URL): 202, after
// which its status and files answer 404.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	job, err := s.ownedJob(r)
	if err == nil {
		job.Status = dtm.JobCancelled
		job.Progress = "cancelled"
		job.UpdatedAt = s.cfg.Clock.Now()
		if err = s.cfg.Jobs.UpdateJob(r.Context(), job); err != nil {
			err = fmt.Errorf("cancel job: %w", err)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "export cancelled", "job", job.ID, "client", job.Client)
	writeOutcome(w, http.StatusAccepted, "information", "informational", "export cancelled")
}
