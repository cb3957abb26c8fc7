package source

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// MaxIssueBody bounds a request body of the issue endpoints (a raise may
// list up to dtm.MaxIssueResources resources).
const MaxIssueBody = 16 << 20

// IssueServer serves data issues under /dtm/v1/practices/{ods}/issues
// (requirements T5 and S6). The target raises, updates, closes and reopens
// issues; the source acknowledges, answers, resolves and rejects them;
// either side comments. Every action is timestamped by Clock, attributed to
// the caller's client id (or, with authentication off, to the "actor" the
// request names), kept in the issue's history, and audited. Callers are
// authorised from the dtm.Principal in the request context: readers of the
// practice take the target's actions, principals with Ingest or Admin the
// source's.
type IssueServer struct {
	Store  dtm.Store  // practices
	Issues dtm.Issues // nil: every issue endpoint answers 501
	// Audit records every action (dtm.AuditIssue) and read (AuditRead);
	// nil records nothing. A request whose audit event cannot be stored
	// fails.
	Audit  dtm.Audit
	Policy dtm.IssuePolicy // response-time target; the zero value is the default
	Clock  dtm.Clock       // dtm.SystemClock{} when nil
	Logger *slog.Logger    // slog.Default() when nil
}

// IssueRoutes registers the data issue and digest endpoints on mux, with
// the Handler's store (which must implement dtm.Issues for the issue
// endpoints, as *sqlite.DB and *postgres.DB do, and is used as the audit
// log when it implements dtm.Audit), clock and logger, and the default
// response-time policy. See IssueServer and DigestServer.
func (h *Handler) IssueRoutes(mux *http.ServeMux) { h.IssueRoutesWith(mux, dtm.IssuePolicy{}) }

// IssueRoutesWith is IssueRoutes with a response-time policy.
func (h *Handler) IssueRoutesWith(mux *http.ServeMux, policy dtm.IssuePolicy) {
	is := &IssueServer{Store: h.Store, Clock: h.Clock, Logger: h.Logger, Policy: policy}
	is.Issues, _ = h.Store.(dtm.Issues)
	is.Audit, _ = h.Store.(dtm.Audit)
	is.Routes(mux)
	ds := &DigestServer{Store: h.Store, Audit: is.Audit, Clock: h.Clock, Logger: h.Logger}
	ds.Routes(mux)
}

// Routes registers the issue endpoints on mux.
func (s *IssueServer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dtm/v1/practices/{ods}/issues", s.list)
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/issues", s.raise)
	mux.HandleFunc("GET /dtm/v1/practices/{ods}/issues/{id}", s.get)
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/issues/{id}/{action}", s.act)
}

// issueActions maps the last path segment of an action URL to the action.
var issueActions = map[string]string{
	"acknowledge": dtm.IssueAcknowledge, "answer": dtm.IssueAnswer, "resolve": dtm.IssueResolve,
	"reject": dtm.IssueReject, "close": dtm.IssueClose, "reopen": dtm.IssueReopen,
	"comment": dtm.IssueComment, "update": dtm.IssueUpdate,
}

// RaiseRequest is the body of POST /dtm/v1/practices/{ods}/issues.
type RaiseRequest struct {
	Severity      string          `json:"severity"`
	Category      string          `json:"category"`
	Rule          string          `json:"rule,omitempty"`
	Key           string          `json:"key,omitempty"`
	Title         string          `json:"title,omitempty"`
	Text          string          `json:"text,omitempty"`
	Resources     []string        `json:"resources,omitempty"`
	ResourceCount int             `json:"resourceCount,omitempty"`
	Outcome       json.RawMessage `json:"outcome,omitempty"`
	// Actor names the person acting, recorded with the caller's client id
	// (alone when authentication is off).
	Actor string `json:"actor,omitempty"`
}

// ActionRequest is the body of POST .../issues/{id}/{action}. The fields
// after Text are for the update action only.
type ActionRequest struct {
	Text          string          `json:"text,omitempty"`
	Actor         string          `json:"actor,omitempty"`
	Resources     []string        `json:"resources,omitempty"`
	ResourceCount int             `json:"resourceCount,omitempty"`
	Outcome       json.RawMessage `json:"outcome,omitempty"`
	Severity      string          `json:"severity,omitempty"`
	Title         string          `json:"title,omitempty"`
}

func (s *IssueServer) raise(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	p, err := s.authorise(r, ods, dtm.IssueRaise)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req RaiseRequest
	if err := decodeBody(r, MaxIssueBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	i := dtm.DataIssue{
		Practice: ods, Key: req.Key, Severity: req.Severity, Category: req.Category, Rule: req.Rule,
		Title: req.Title, Text: req.Text, Resources: dtm.SortIssueResources(req.Resources),
		ResourceCount: req.ResourceCount, Outcome: []byte(req.Outcome),
	}
	if err := i.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := i.Apply(dtm.IssueAction{Action: dtm.IssueRaise, Actor: actor(p, req.Actor), At: s.now()}); err != nil {
		s.fail(w, r, err)
		return
	}
	i, err = s.Issues.CreateIssue(r.Context(), i)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, p, ods, dtm.AuditIssue, "raise issue "+i.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/dtm/v1/practices/"+ods+"/issues/"+i.ID)
	writeJSON(w, http.StatusCreated, s.issueJSON(i, true))
}

func (s *IssueServer) act(w http.ResponseWriter, r *http.Request) {
	ods, id := r.PathValue("ods"), r.PathValue("id")
	action, ok := issueActions[r.PathValue("action")]
	if !ok {
		s.fail(w, r, dtm.Errorf(dtm.ENotFound, "no issue action %.40q", r.PathValue("action")))
		return
	}
	p, err := s.authorise(r, ods, action)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req ActionRequest
	if err := decodeBody(r, MaxIssueBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	a := dtm.IssueAction{
		Action: action, Actor: actor(p, req.Actor), At: s.now(), Text: req.Text,
		Resources: req.Resources, ResourceCount: req.ResourceCount, Outcome: []byte(req.Outcome),
		Severity: req.Severity, Title: req.Title,
	}
	if action != dtm.IssueUpdate && (a.Resources != nil || a.Outcome != nil || a.Severity != "" || a.Title != "") {
		s.fail(w, r, dtm.Errorf(dtm.EInvalid, "only update takes resources, outcome, severity or title"))
		return
	}
	i, err := s.Issues.UpdateIssue(r.Context(), ods, id, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, p, ods, dtm.AuditIssue, action+" issue "+i.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(i, true))
}

func (s *IssueServer) get(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	p, err := s.authorise(r, ods, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, p, ods, dtm.AuditRead, "read issue "+r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	i, err := s.Issues.Issue(r.Context(), ods, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.issueJSON(i, true))
}

// IssueList is the response of GET /dtm/v1/practices/{ods}/issues.
type IssueList struct {
	Practice string      `json:"practice"`
	Issues   []IssueJSON `json:"issues"`
	// Overdue counts the listed issues whose response from the source is
	// overdue.
	Overdue int `json:"overdue"`
}

func (s *IssueServer) list(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	p, err := s.authorise(r, ods, "")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := issueQuery(r, ods)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, p, ods, dtm.AuditRead, "list issues"); err != nil {
		s.fail(w, r, err)
		return
	}
	is, err := s.Issues.ListIssues(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := IssueList{Practice: ods, Issues: []IssueJSON{}}
	for _, i := range is {
		j := s.issueJSON(i, false)
		if j.Overdue {
			out.Overdue++
		}
		out.Issues = append(out.Issues, j)
	}
	writeJSON(w, http.StatusOK, out)
}

// issueQuery reads the list filters: status (comma-separated; "active"
// means every status but closed), category, rule, key and limit.
func issueQuery(r *http.Request, ods string) (dtm.IssueQuery, error) {
	v := r.URL.Query()
	q := dtm.IssueQuery{Practice: ods, Category: v.Get("category"), Rule: v.Get("rule"), Key: v.Get("key")}
	for _, st := range strings.Split(v.Get("status"), ",") {
		switch st = strings.TrimSpace(st); {
		case st == "":
		case st == "active":
			q.Statuses = append(q.Statuses, dtm.IssueOpen, dtm.IssueAcknowledged, dtm.IssueAnswered, dtm.IssueResolved, dtm.IssueRejected)
		case dtm.ValidIssueStatus(st):
			q.Statuses = append(q.Statuses, st)
		default:
			return q, dtm.Errorf(dtm.EInvalid, "unknown issue status %.40q", st)
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return q, dtm.Errorf(dtm.EInvalid, "limit must be a positive number")
		}
		q.Limit = n
	}
	return q, nil
}

// authorise checks the caller may take action on the practice's issues
// (action "" for reading) and that the practice exists.
func (s *IssueServer) authorise(r *http.Request, ods, action string) (dtm.Principal, error) {
	if s.Issues == nil {
		return dtm.Principal{}, dtm.Errorf(dtm.ENotSupported, "this store does not keep data issues")
	}
	p, _ := dtm.PrincipalFromContext(r.Context())
	source := p.Admin || (p.Ingest && p.CanRead(ods))
	switch {
	case dtm.IssueActionBySource(action) && !source:
		return p, dtm.Errorf(dtm.EForbidden, "only the source supplier may %s an issue", action)
	case action == dtm.IssueComment && !source && !p.CanRead(ods):
		return p, dtm.Errorf(dtm.EForbidden, "not authorised for practice %s", ods)
	case !dtm.IssueActionBySource(action) && action != dtm.IssueComment && !p.CanRead(ods) && !p.Admin:
		return p, dtm.Errorf(dtm.EForbidden, "not authorised for practice %s", ods)
	}
	if _, err := s.Store.Practice(r.Context(), ods); err != nil {
		return p, err
	}
	return p, nil
}

// actor attributes an action: the client id, with the named person when
// given; the person alone when authentication is off.
func actor(p dtm.Principal, named string) string {
	named = strings.TrimSpace(named)
	if len([]rune(named)) > 100 {
		named = string([]rune(named)[:100])
	}
	switch {
	case p.Client == "":
		return named
	case named == "":
		return p.Client
	}
	return p.Client + " (" + named + ")"
}

// audit records an audit event when an audit log is configured.
func (s *IssueServer) audit(r *http.Request, p dtm.Principal, ods, action, detail string) error {
	return recordAudit(r, s.Audit, s.now(), p, ods, action, detail)
}

// recordAudit records a successful action of p on the practice in a (when
// not nil). It returns an EInternal-coded error when the event cannot be
// stored, so that the request fails rather than go unaudited.
func recordAudit(r *http.Request, a dtm.Audit, now time.Time, p dtm.Principal, ods, action, detail string) error {
	if a == nil {
		return nil
	}
	e := dtm.AuditEvent{Time: now, Client: p.Client, Action: action, Practice: ods,
		Outcome: dtm.OutcomeSuccess, Detail: detail, Remote: r.RemoteAddr}
	if err := a.Record(r.Context(), e); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func (s *IssueServer) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

func (s *IssueServer) fail(w http.ResponseWriter, r *http.Request, err error) {
	failWith(w, r, s.Logger, err)
}

// decodeBody reads a JSON request body of at most max bytes strictly. An
// empty body decodes as {}.
func decodeBody(r *http.Request, max int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return dtm.Errorf(dtm.EInvalid, "request body: %s", err)
	}
	if int64(len(b)) > max {
		return dtm.Errorf(dtm.ETooLarge, "request body exceeds %d bytes", max)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return dtm.Errorf(dtm.EInvalid, "request body: %s", strings.TrimPrefix(fmt.Sprint(err), "json: "))
	}
	return nil
}

// failWith writes err as an OperationOutcome, logging internal errors.
func failWith(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, outcome := fhir.ErrorOutcome(err)
	if status == http.StatusInternalServerError {
		if log == nil {
			log = slog.Default()
		}
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(outcome)
}
