package bulk

import (
	"context"
	"errors"
	"fmt"

	"github.com/dtm-project/dtm"
)

// errStop ends a journal scan early; it never escapes this package.
var errStop = errors.New("stop scan")

// HeaderLister is an optional extension of dtm.Journal: ChangeHeaders is
// Changes without the resource JSON (Change.JSON is nil). Planning only
// counts, so when the Journal implements it, planning reads no resource
// bodies. Implementations are safe for concurrent use.
type HeaderLister interface {
	ChangeHeaders(ctx context.Context, q dtm.ChangeQuery, fn func(dtm.Change) error) error
}

// selector decides which journal changes of one practice an export
// carries. Planning (which counts) and file streaming (which writes) both
// go through it, so a manifest's counts always match its files' contents.
// It caches patient membership and is not safe for concurrent use.
type selector struct {
	j        dtm.Journal
	job      *dtm.ExportJob
	practice string
	types    map[string]bool // nil: every type
	inScope  map[string]bool // patient id -> compartment exported (cache)
}

// newSelector returns a selector for one practice of job.
func newSelector(j dtm.Journal, job *dtm.ExportJob, practice string) *selector {
	s := &selector{j: j, job: job, practice: practice, inScope: map[string]bool{}}
	if len(job.Types) > 0 {
		s.types = map[string]bool{}
		for _, t := range job.Types {
			s.types[t] = true
		}
	}
	return s
}

// wantType reports whether the export includes resources of type t.
func (s *selector) wantType(t string) bool { return s.types == nil || s.types[t] }

// keep reports whether change c, the state at job.Until of a resource whose
// latest change is in the export's range, belongs in the export.
//
// Membership (invariant 3) applies to group and patient exports: a
// resource in the compartment of a patient who exists at Until but is not a
// registered member (deducted, or deleted) is left out. Patient resources
// are always kept, so a deduction is reported, and so are resources in no
// patient's compartment (practitioners, organisations, medications...).
// System exports keep everything.
func (s *selector) keep(ctx context.Context, c *dtm.Change) (bool, error) {
	if !s.wantType(c.Type) {
		return false, nil
	}
	if s.job.Kind == dtm.ExportSystem || c.Type == "Patient" || c.Patient == "" {
		return true, nil
	}
	return s.patientInScope(ctx, c.Patient)
}

// patientInScope reports whether the compartment of patient is exported:
// the patient is a member at Until, or has no state at Until at all.
func (s *selector) patientInScope(ctx context.Context, patient string) (bool, error) {
	if in, ok := s.inScope[patient]; ok {
		return in, nil
	}
	st, err := s.j.State(ctx, s.practice, "Patient", patient, s.job.Until)
	var in bool
	switch {
	case dtm.ErrorCode(err) == dtm.ENotFound:
		in = true
	case err != nil:
		return false, fmt.Errorf("patient state: %w", err)
	default:
		in = st.Op == dtm.OpUpsert && st.Member
	}
	s.inScope[patient] = in
	return in, nil
}

// fileKind says which manifest list a kept change goes to: deletes only to
// deleted, never to output (invariant 2).
func fileKind(c *dtm.Change) string {
	if c.Op == dtm.OpDelete {
		return dtm.FileDeleted
	}
	return dtm.FileOutput
}

// scanChanges calls fn, in seq order, with every kept change of the
// practice (of typ, when not "") whose latest seq at or before job.Until
// is in (since, job.Until]. With headers, the changes may come without
// their JSON (see HeaderLister). It returns fn's error, except errStop,
// which ends the scan quietly.
func (s *selector) scanChanges(ctx context.Context, typ string, since int64, headers bool, fn func(c *dtm.Change) error) error {
	q := dtm.ChangeQuery{Practice: s.practice, Type: typ, Since: since, Until: s.job.Until}
	list := s.j.Changes
	if hl, ok := s.j.(HeaderLister); ok && headers {
		list = hl.ChangeHeaders
	}
	err := list(ctx, q, func(c dtm.Change) error {
		ok, err := s.keep(ctx, &c)
		if err != nil || !ok {
			return err
		}
		return fn(&c)
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// isJoiner reports whether patient change c (state at Until) is a patient
// who is a member at Until but was not at job.Since: absent, deleted or not
// a member then. A full export (Since 0) has no joiners: it carries
// everything anyway.
func (s *selector) isJoiner(ctx context.Context, c *dtm.Change) (bool, error) {
	if s.job.Since == 0 || s.job.Kind == dtm.ExportSystem || c.Type != "Patient" ||
		c.Op != dtm.OpUpsert || !c.Member {
		return false, nil
	}
	before, err := s.j.State(ctx, s.practice, "Patient", c.ID, s.job.Since)
	switch {
	case dtm.ErrorCode(err) == dtm.ENotFound:
		return true, nil
	case err != nil:
		return false, fmt.Errorf("patient state at since: %w", err)
	}
	return before.Op == dtm.OpDelete || !before.Member, nil
}

// scanJoiner calls fn with every resource of type typ (every wanted type
// when "") in the joiner's compartment at Until that the change parts do
// not already carry: those whose latest change is at or before job.Since.
func (s *selector) scanJoiner(ctx context.Context, patient, typ string, fn func(c *dtm.Change) error) error {
	return s.j.Compartment(ctx, s.practice, patient, s.job.Until, func(c dtm.Change) error {
		if c.Seq > s.job.Since || c.Op != dtm.OpUpsert || !s.wantType(c.Type) || (typ != "" && c.Type != typ) {
			return nil
		}
		return fn(&c)
	})
}
