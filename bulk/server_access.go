package bulk

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/dtm-project/dtm"
)

// caller returns the principal of a request (see Config.Caller).
func (s *Server) caller(r *http.Request) dtm.Principal {
	if s.cfg.Caller != nil {
		client, practices := s.cfg.Caller(r)
		return dtm.Principal{Client: client, Practices: practices}
	}
	if p, ok := dtm.PrincipalFromContext(r.Context()); ok {
		return p
	}
	return dtm.Principal{Practices: []string{dtm.AllPractices}}
}

// readablePractices returns the ODS codes the principal may read, every
// registered practice for dtm.AllPractices, sorted.
func (s *Server) readablePractices(ctx context.Context, p dtm.Principal) ([]string, error) {
	if !slices.Contains(p.Practices, dtm.AllPractices) {
		out := slices.Clone(p.Practices)
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	all, err := s.cfg.Practices.ListPractices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list practices: %w", err)
	}
	out := make([]string, len(all))
	for i, pr := range all {
		out[i] = pr.ODS
	}
	return out, nil
}

// exportPractices returns the practices an export of kind covers: the
// Group's practice (which must exist and be readable) or every practice the
// caller may read.
func (s *Server) exportPractices(ctx context.Context, p dtm.Principal, kind, ods string) ([]string, error) {
	if kind != dtm.ExportGroup {
		out, err := s.readablePractices(ctx, p)
		if err == nil && len(out) == 0 {
			err = dtm.Errorf(dtm.EForbidden, "no practice is granted to this client")
		}
		return out, err
	}
	if !dtm.ValidODS(ods) {
		return nil, dtm.Errorf(dtm.ENotFound, "no such Group: %q is not an ODS code", ods)
	}
	if !p.CanRead(ods) {
		return nil, dtm.Errorf(dtm.EForbidden, "client is not authorised for Group %s", ods)
	}
	if _, err := s.cfg.Practices.Practice(ctx, ods); err != nil {
		if dtm.ErrorCode(err) == dtm.ENotFound {
			return nil, dtm.Errorf(dtm.ENotFound, "no such Group: %s", ods)
		}
		return nil, fmt.Errorf("practice: %w", err)
	}
	return []string{ods}, nil
}

// ownedJob loads the job named in the request path and checks that the
// caller may see it: the client that started it, still authorised for its
// practices. A cancelled job is ENotFound, an expired one EGone.
func (s *Server) ownedJob(r *http.Request) (dtm.ExportJob, error) {
	ctx := r.Context()
	job, err := s.cfg.Jobs.Job(ctx, r.PathValue("job"))
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return job, dtm.Errorf(dtm.ENotFound, "no such export")
	} else if err != nil {
		return job, fmt.Errorf("load job: %w", err)
	}
	p := s.caller(r)
	denied := func(ods string) bool { return !p.CanRead(ods) }
	if job.Client != p.Client || slices.ContainsFunc(job.Practices, denied) {
		return job, dtm.Errorf(dtm.EForbidden, "this export belongs to another client")
	}
	switch {
	case job.Status == dtm.JobCancelled:
		return job, dtm.Errorf(dtm.ENotFound, "export was cancelled")
	case !job.ExpiresAt.IsZero() && job.ExpiresAt.Before(s.cfg.Clock.Now()):
		return job, dtm.Errorf(dtm.EGone, "export has expired")
	}
	return job, nil
}
