package bulk

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxFileResources = 50_000
	DefaultMaxActiveJobs    = 2
	DefaultJobTTL           = 24 * time.Hour
	DefaultRetryAfter       = time.Second
	DefaultWorkers          = 2
)

// leaseDuration is how long a worker holds a job it plans without renewing
// the lease; another replica may take the job over after that.
const leaseDuration = 30 * time.Second

// Config configures a Server. Journal, Practices and Jobs are required;
// every other field has a default.
type Config struct {
	Journal   dtm.Journal    // the records exported
	Practices dtm.Practices  // the practice registry
	Jobs      dtm.ExportJobs // export jobs, shared by every replica
	// BaseURL is the absolute URL the server is reached at, without a
	// trailing slash and without /fhir, e.g. "http://127.0.0.1:8080".
	// Content-Location, manifest and file URLs are built on it.
	BaseURL string
	Clock   dtm.Clock    // dtm.SystemClock{} when nil
	Logger  *slog.Logger // slog.Default() when nil; never given patient data
	// Caller returns the client id of a request and the practices it may
	// read (dtm.AllPractices for every practice). When nil, the
	// dtm.Principal in the request context is used, and without one the
	// caller is client "" with every practice (authentication off).
	Caller func(r *http.Request) (client string, practices []string)
	// RequiresAccessToken is reported in manifests and makes the
	// CapabilityStatement name SMART-on-FHIR: set it when auth is on.
	RequiresAccessToken bool
	// MaxFileResources bounds the resources (or deleted Bundles) of one
	// file; DefaultMaxFileResources when 0. A joiner part may exceed it
	// when one patient alone has more resources of a type.
	MaxFileResources int
	// MaxActiveJobs is how many accepted or in-progress exports one client
	// may have; further kick-offs get 429. DefaultMaxActiveJobs when 0.
	MaxActiveJobs int
	// JobTTL is how long a completed export's status and files stay
	// available; DefaultJobTTL when 0.
	JobTTL time.Duration
	// RetryAfter is the polling interval suggested to clients while an
	// export is planned (rounded up to whole seconds); DefaultRetryAfter
	// when 0.
	RetryAfter time.Duration
	// Workers is the number of goroutines Run uses to plan jobs;
	// DefaultWorkers when 0.
	Workers int
	// Audit, when set, records every status poll, cancel, file download
	// and Binary read, and kick-offs refused before AllowRetrieval (which
	// records the kick-offs it sees itself).
	Audit dtm.Audit
	// AllowRetrieval, when set, is asked at every kick-off, for each
	// practice, whether the client may retrieve it now under its agreed
	// retrieval limit (S7). It records the kick-off when allowed; when not,
	// its error (ETooMany) is returned to the client with Retry-After.
	AllowRetrieval func(ctx context.Context, client, practice string, now time.Time) (retryAfter time.Duration, err error)
	// ReplicaID names this process as a job lease holder; the host name
	// and a random suffix when "".
	ReplicaID string
}

// Server is the Bulk Data server: HTTP handlers (Handler) and the job
// workers that plan exports (Run). It is safe for concurrent use.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	wake    chan struct{} // a kick-off nudges an idle worker
	started time.Time
	// readAhead holds a token per export file segment read ahead of its
	// download (export_readahead.go).
	readAhead chan struct{}
	members   *memberCache // Patient states for selectors (export_members.go)
}

// NewServer returns a server for cfg, filling in defaults. It does not
// start workers: call Run.
func NewServer(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = dtm.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.MaxFileResources = cmpOr(cfg.MaxFileResources, DefaultMaxFileResources)
	cfg.MaxActiveJobs = cmpOr(cfg.MaxActiveJobs, DefaultMaxActiveJobs)
	cfg.JobTTL = cmpOr(cfg.JobTTL, DefaultJobTTL)
	cfg.RetryAfter = cmpOr(cfg.RetryAfter, DefaultRetryAfter)
	cfg.Workers = cmpOr(cfg.Workers, DefaultWorkers)
	if cfg.ReplicaID == "" {
		host, _ := os.Hostname()
		cfg.ReplicaID = host + "-" + rand.Text()[:8]
	}
	s := &Server{cfg: cfg, wake: make(chan struct{}, 1), started: cfg.Clock.Now(),
		readAhead: make(chan struct{}, readAheadTokens()), members: newMemberCache()}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.pattern, rt.handler)
	}
	s.mux.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, dtm.Errorf(dtm.ENotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

// cmpOr returns v, or def when v is the zero value or negative.
func cmpOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Handler returns the HTTP handler of every /fhir/ route. The caller mounts
// it (for "/fhir/") in its own mux, behind authentication when that is on.
func (s *Server) Handler() http.Handler { return s.mux }

// route is one registered endpoint.
type route struct {
	method, pattern string
	handler         http.HandlerFunc
}

// routes lists every endpoint; docs/openapi.yaml must document each
// pattern (checked by TestOpenAPI_Routes).
func (s *Server) routes() []route {
	return []route{
		{"GET", "/fhir/metadata", s.handleMetadata},
		{"GET", "/fhir/$export", s.handleKickoff(dtm.ExportSystem)},
		{"POST", "/fhir/$export", s.handleKickoff(dtm.ExportSystem)},
		{"GET", "/fhir/Patient/$export", s.handleKickoff(dtm.ExportPatient)},
		{"POST", "/fhir/Patient/$export", s.handleKickoff(dtm.ExportPatient)},
		{"GET", "/fhir/Group/{ods}/$export", s.handleKickoff(dtm.ExportGroup)},
		{"POST", "/fhir/Group/{ods}/$export", s.handleKickoff(dtm.ExportGroup)},
		{"GET", "/fhir/_export/{job}", s.audited(dtm.AuditStatus, s.handleStatus)},
		{"DELETE", "/fhir/_export/{job}", s.audited(dtm.AuditCancel, s.handleCancel)},
		{"GET", "/fhir/_export/{job}/{file}", s.audited(dtm.AuditDownload, s.handleFile)},
		{"GET", "/fhir/Binary/{id}", s.audited(dtm.AuditBinary, s.handleBinary)},
	}
}

// fail writes err as an OperationOutcome with the status its code maps to.
// Internal errors are logged with their detail; the caller sees only the
// caller-safe message.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := fhir.ErrorOutcome(err)
	if status >= 500 {
		s.cfg.Logger.ErrorContext(r.Context(), "bulk request failed",
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(body)
}

// writeOutcome writes an OperationOutcome with one issue.
func writeOutcome(w http.ResponseWriter, status int, severity, code, diagnostics string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(fhir.OperationOutcome(fhir.OutcomeIssue{Severity: severity, Code: code, Diagnostics: diagnostics}))
}

// retryAfter formats d as whole seconds, at least 1, for Retry-After.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// wakeWorker nudges one idle worker without blocking.
func (s *Server) wakeWorker() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
