package target

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// ServerConfig configures a Server. Store is required.
type ServerConfig struct {
	Store dtm.Store
	// State, when set, serves the target status and quarantine under
	// /dtm/v1/target/.
	State dtm.TargetState
	// BaseURL is the absolute URL the server is reached at, without /fhir
	// (fullUrl of Bundle entries); relative fullUrls when "".
	BaseURL string
	Clock   dtm.Clock    // dtm.SystemClock{} when nil
	Logger  *slog.Logger // slog.Default() when nil; never given patient data
	// MaxResults bounds the entries of one search Bundle (10,000 when 0).
	MaxResults int
}

// Server is a read-only FHIR R4 API over the target store, so that testers
// and clinicians can look at what arrived (read by id, Patient search by
// NHS number, Patient/{id}/$everything, search by patient), plus the
// target's status. It never writes. It is safe for concurrent use.
type Server struct {
	cfg ServerConfig
	mux *http.ServeMux
	nhs *nhsIndex
}

// NewServer returns a server for cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Clock == nil {
		cfg.Clock = dtm.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxResults <= 0 {
		cfg.MaxResults = 10_000
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	s := &Server{cfg: cfg, mux: http.NewServeMux(), nhs: newNHSIndex(cfg.Store)}
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, rt.handler)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, dtm.Errorf(dtm.ENotFound, "no such endpoint (this server is read-only)"))
	})
	return s
}

// route is one endpoint of the Server; docs/openapi-target.yaml documents
// each (a test keeps the two in step).
type route struct {
	method, pattern string
	handler         http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/fhir/metadata", s.metadata},
		{"GET", "/fhir/{type}/{id}", s.read},
		{"GET", "/fhir/Patient/{id}/$everything", s.everything},
		{"GET", "/fhir/{type}", s.search},
		{"GET", "/dtm/v1/target/practices/{ods}", s.status},
		{"GET", "/dtm/v1/target/practices/{ods}/quarantine", s.quarantine},
	}
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// fail writes err as an OperationOutcome, logging internal errors.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, oo := fhir.ErrorOutcome(err)
	if status >= 500 {
		s.cfg.Logger.Error("target api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(oo)
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	cs := map[string]any{
		"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
		"date": fhir.FormatInstant(s.cfg.Clock.Now()), "fhirVersion": "4.0.1", "format": []string{"json"},
		"software": map[string]string{"name": "dtm target"},
		"rest": []any{map[string]any{
			"mode": "server",
			"resource": []any{
				map[string]any{"type": "Patient", "interaction": []any{map[string]string{"code": "read"}, map[string]string{"code": "search-type"}},
					"searchParam": []any{map[string]string{"name": "identifier", "type": "token"}},
					"operation":   []any{map[string]string{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}}},
			},
		}},
	}
	writeJSON(w, http.StatusOK, "application/fhir+json", cs)
}

// findPractice returns the practice holding type/id, trying each in ODS
// order, with the resource's current state.
func (s *Server) find(ctx context.Context, typ, id string) (dtm.Change, error) {
	ps, err := s.cfg.Store.ListPractices(ctx)
	if err != nil {
		return dtm.Change{}, err
	}
	for _, p := range ps {
		c, err := s.cfg.Store.Get(ctx, p.ODS, typ, id)
		if dtm.ErrorCode(err) == dtm.ENotFound {
			continue
		}
		return c, err
	}
	return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "%s/%s not found", typ, id)
}

func (s *Server) read(w http.ResponseWriter, r *http.Request) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if fhir.CheckType(typ) != nil || fhir.CheckID(id) != nil {
		s.fail(w, r, dtm.Errorf(dtm.EInvalid, "invalid resource type or id"))
		return
	}
	c, err := s.find(r.Context(), typ, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("ETag", `W/"`+strconv.FormatInt(c.Version, 10)+`"`)
	w.Header().Set("Last-Modified", c.CommitTime.UTC().Format(http.TimeFormat))
	w.Write(c.JSON)
}

// everything returns the patient's compartment as a searchset Bundle.
func (s *Server) everything(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if fhir.CheckID(id) != nil {
		s.fail(w, r, dtm.Errorf(dtm.EInvalid, "invalid patient id"))
		return
	}
	p, err := s.find(r.Context(), "Patient", id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.compartment(w, r, p.Practice, id, "")
}

// compartment writes the live resources of the patient's compartment (of
// type typ when not "") as a searchset Bundle.
func (s *Server) compartment(w http.ResponseWriter, r *http.Request, practice, patient, typ string) {
	ctx := r.Context()
	head, err := s.cfg.Store.Head(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b := newBundle(s.cfg.BaseURL, s.cfg.MaxResults)
	err = s.cfg.Store.Compartment(ctx, practice, patient, head.Seq, func(c dtm.Change) error {
		if typ == "" || c.Type == typ {
			b.add(c)
		}
		return nil
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b.write(w)
}

// search handles Patient?identifier=system|value and
// {type}?patient=id (or subject=Patient/id).
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	typ, q := r.PathValue("type"), r.URL.Query()
	if fhir.CheckType(typ) != nil {
		s.fail(w, r, dtm.Errorf(dtm.EInvalid, "invalid resource type"))
		return
	}
	if v := q.Get("identifier"); typ == "Patient" && v != "" {
		s.searchIdentifier(w, r, v)
		return
	}
	patient := q.Get("patient")
	if patient == "" {
		patient = strings.TrimPrefix(q.Get("subject"), "Patient/")
	}
	patient = strings.TrimPrefix(patient, "Patient/")
	if patient == "" || fhir.CheckID(patient) != nil {
		s.fail(w, r, dtm.Errorf(dtm.ENotSupported, "supported searches: Patient?identifier=system|value and {type}?patient=id"))
		return
	}
	p, err := s.find(r.Context(), "Patient", patient)
	if dtm.ErrorCode(err) == dtm.ENotFound {
		newBundle(s.cfg.BaseURL, 0).write(w)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	s.compartment(w, r, p.Practice, patient, typ)
}

// searchIdentifier finds patients by identifier system|value (NHS number).
func (s *Server) searchIdentifier(w http.ResponseWriter, r *http.Request, token string) {
	system, value, ok := strings.Cut(token, "|")
	if !ok {
		system, value = nhsNumberSystem, token
	}
	b := newBundle(s.cfg.BaseURL, s.cfg.MaxResults)
	if system == nhsNumberSystem {
		refs, err := s.nhs.lookup(r.Context(), value)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, ref := range refs {
			if c, err := s.cfg.Store.Get(r.Context(), ref.practice, "Patient", ref.id); err == nil {
				b.add(c)
			}
		}
	}
	b.write(w)
}

// bundle accumulates a searchset Bundle from raw resource JSON, so that
// resources are served exactly as stored.
type bundle struct {
	buf   bytes.Buffer
	base  string
	n     int
	max   int
	total int
}

func newBundle(base string, max int) *bundle {
	return &bundle{base: base, max: max}
}

func (b *bundle) add(c dtm.Change) {
	b.total++
	if b.n >= b.max {
		return
	}
	if b.n > 0 {
		b.buf.WriteByte(',')
	}
	b.n++
	full := c.Type + "/" + c.ID
	if b.base != "" {
		full = b.base + "/fhir/" + full
	}
	b.buf.WriteString(`{"fullUrl":`)
	q, _ := json.Marshal(full)
	b.buf.Write(q)
	b.buf.WriteString(`,"resource":`)
	b.buf.Write(c.JSON)
	b.buf.WriteString(`,"search":{"mode":"match"}}`)
}

func (b *bundle) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","total":` + strconv.Itoa(b.total) + `,"entry":[`))
	w.Write(b.buf.Bytes())
	w.Write([]byte("]}"))
}

func writeJSON(w http.ResponseWriter, status int, ctype string, v any) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// status serves the practice's target status: SLA (T1, T2, T3), recent
// pulls and quarantine counts.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	if s.cfg.State == nil || !dtm.ValidODS(ods) {
		s.fail(w, r, dtm.Errorf(dtm.ENotFound, "no target status for this practice"))
		return
	}
	st, err := TargetStatus(r.Context(), s.cfg.Store, s.cfg.State, ods, s.cfg.Clock.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, "application/json", st)
}

// quarantine serves the practice's quarantine records as NDJSON, oldest
// first (of one pull with ?pull=ID).
func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	if s.cfg.State == nil || !dtm.ValidODS(ods) {
		s.fail(w, r, dtm.Errorf(dtm.ENotFound, "no quarantine for this practice"))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err := s.cfg.State.Quarantined(r.Context(), ods, r.URL.Query().Get("pull"), func(q dtm.QuarantineRecord) error {
		return enc.Encode(quarantineJSON{
			Pull: q.Pull, Reason: q.Reason, Type: q.Type, ID: q.ID, Version: q.Version, Where: q.Where,
			At: fhir.FormatInstant(q.At), Outcome: rawOrNull(q.Outcome), Resource: rawOrNull(q.JSON),
		})
	})
	if err != nil {
		s.cfg.Logger.Error("target api: quarantine", "err", err)
	}
}

// quarantineJSON is one line of the quarantine endpoint.
type quarantineJSON struct {
	Pull     string          `json:"pull"`
	Reason   string          `json:"reason"`
	Type     string          `json:"type,omitempty"`
	ID       string          `json:"id,omitempty"`
	Version  int64           `json:"version,omitempty"`
	Where    string          `json:"where,omitempty"`
	At       string          `json:"at"`
	Outcome  json.RawMessage `json:"outcome"`
	Resource json.RawMessage `json:"resource"`
}

// rawOrNull returns b as raw JSON when it is valid JSON, else JSON null
// (an unreadable line is kept in the store, not echoed as broken JSON).
func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return json.RawMessage("null")
	}
	return b
}

// Status is the target's report on one practice (requirements T1 to T3),
// served at /dtm/v1/target/practices/{ods}.
type Status struct {
	Practice string `json:"practice"`
	// DataAsOf is the transactionTime the target holds the practice up to.
	DataAsOf string `json:"dataAsOf,omitempty"`
	// LastPull and the SLA facts.
	LastPullID            string  `json:"lastPull,omitempty"`
	LastPullFinished      string  `json:"lastPullFinished,omitempty"`
	ConsumeLatencySeconds float64 `json:"consumeLatencySeconds"`
	T1                    string  `json:"t1"` // ok, breach or unknown
	SinceLastPullSeconds  float64 `json:"sinceLastPullSeconds"`
	T2                    string  `json:"t2"`
	SourceLastUpdated     string  `json:"sourceLastUpdated,omitempty"`
	SourceFreshness       string  `json:"sourceFreshness,omitempty"`
	// Pending is the id of an unfinished pull, if any.
	Pending string `json:"pending,omitempty"`
	// Counts are live resources per type in the target store.
	Counts map[string]int64 `json:"counts"`
	// Quarantined counts quarantine records by reason.
	Quarantined map[string]int64 `json:"quarantined"`
	Pulls       []PullSummary    `json:"pulls"`
}

// PullSummary is one pull in a Status.
type PullSummary struct {
	ID              string         `json:"id"`
	Status          string         `json:"status"`
	Since           string         `json:"since,omitempty"`
	TransactionTime string         `json:"transactionTime,omitempty"`
	Started         string         `json:"started"`
	Available       string         `json:"available,omitempty"`
	Finished        string         `json:"finished,omitempty"`
	Counts          dtm.PullCounts `json:"counts"`
	Error           string         `json:"error,omitempty"`
}

// TargetStatus computes the practice's Status at now.
func TargetStatus(ctx context.Context, st dtm.Store, state dtm.TargetState, ods string, now time.Time) (Status, error) {
	sla, err := Report(ctx, state, ods, now)
	if err != nil {
		return Status{}, err
	}
	out := Status{Practice: ods, T1: "unknown", T2: okOr(false), Quarantined: map[string]int64{}}
	if lp := sla.LastPull; lp.ID != "" {
		out.DataAsOf, out.LastPullID, out.LastPullFinished = instant(lp.TransactionTime), lp.ID, instant(lp.FinishedAt)
		out.ConsumeLatencySeconds, out.T1 = sla.ConsumeLatency.Seconds(), okOr(sla.T1OK)
		out.SinceLastPullSeconds, out.T2 = sla.SinceLastSuccess.Seconds(), okOr(sla.T2OK)
		out.SourceLastUpdated, out.SourceFreshness = instant(lp.SourceLastUpdated), lp.SourceFreshness
	}
	if sla.Pending != nil {
		out.Pending = sla.Pending.ID
	}
	if head, err := st.Head(ctx); err != nil {
		return Status{}, err
	} else if out.Counts, err = st.Counts(ctx, ods, head.Seq); err != nil {
		return Status{}, err
	}
	if err := state.Quarantined(ctx, ods, "", func(q dtm.QuarantineRecord) error {
		out.Quarantined[q.Reason]++
		return nil
	}); err != nil {
		return Status{}, err
	}
	pulls, err := state.Pulls(ctx, ods, 20)
	if err != nil {
		return Status{}, err
	}
	for _, p := range pulls {
		out.Pulls = append(out.Pulls, PullSummary{ID: p.ID, Status: p.Status, Since: instant(p.Since),
			TransactionTime: instant(p.TransactionTime), Started: instant(p.StartedAt),
			Available: instant(p.AvailableAt), Finished: instant(p.FinishedAt), Counts: p.Counts, Error: p.Error})
	}
	return out, nil
}

func okOr(ok bool) string {
	if ok {
		return "ok"
	}
	return "breach"
}

func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fhir.FormatInstant(t)
}
