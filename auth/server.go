package auth

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/dtm-project/dtm"
)

// Paths served by Server.Register.
const (
	PathSmartConfig     = "/.well-known/smart-configuration"
	PathFHIRSmartConfig = "/fhir/.well-known/smart-configuration" // discovery relative to the FHIR base
	PathToken           = "/auth/token"
)

// Limits of the token endpoint (SMART Backend Services).
const (
	// MaxTokenTTL is the longest lifetime of an access token.
	MaxTokenTTL = 5 * time.Minute
	// MaxAssertionLifetime is how far ahead of now an assertion's exp may be.
	MaxAssertionLifetime = 5 * time.Minute
	// DefaultLeeway is the clock skew allowed when checking exp, nbf and iat.
	DefaultLeeway = 60 * time.Second
)

// DefaultPublicPaths returns the paths Middleware lets through without a
// token when Config.PublicPaths is nil: discovery, the token endpoint, the
// FHIR CapabilityStatement and the health checks.
func DefaultPublicPaths() []string {
	return []string{PathSmartConfig, PathFHIRSmartConfig, PathToken, "/fhir/metadata", "/healthz", "/readyz"}
}

// Config configures a Server. Store and TokenURL are required.
type Config struct {
	// Store holds clients, tokens, used assertion ids and the audit log.
	Store dtm.AuthStore
	// TokenURL is the absolute URL of the token endpoint as clients reach
	// it (for example https://dtm.example.nhs.uk/auth/token). An assertion's
	// aud must equal it exactly.
	TokenURL string
	// TokenTTL is the lifetime of issued access tokens; MaxTokenTTL when
	// zero. It may not exceed MaxTokenTTL.
	TokenTTL time.Duration
	// PublicPaths are the request paths Middleware serves without a
	// token; DefaultPublicPaths() when nil. Paths match exactly.
	PublicPaths []string
	// Leeway is the clock skew allowed on assertion times; DefaultLeeway
	// when zero.
	Leeway time.Duration
	// JWKSCacheTTL is how long a fetched JWKS is used before it is fetched
	// again; 10 minutes when zero.
	JWKSCacheTTL time.Duration
	// JWKSTimeout bounds one JWKS fetch; 10 seconds when zero.
	JWKSTimeout time.Duration
	// HTTPClient fetches registered JWKS URLs; http.DefaultClient's
	// transport when nil. Redirects are never followed, whatever the
	// client's policy.
	HTTPClient *http.Client
	// Clock is the time; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// Rand is the source of access tokens; crypto/rand.Reader when nil.
	Rand io.Reader
	// Logger receives operational messages (never tokens, assertions or
	// patient data); slog.Default() when nil.
	Logger *slog.Logger
}

// Server is the SMART Backend Services authorisation server of the source
// role. It is safe for concurrent use. It does not own Config.Store: the
// caller closes that after the last request.
type Server struct {
	store    dtm.AuthStore
	tokenURL string
	ttl      time.Duration
	leeway   time.Duration
	public   map[string]bool
	clock    dtm.Clock
	rand     io.Reader
	logger   *slog.Logger
	keys     *keySource
}

// New returns a Server for cfg. It returns an EInvalid error when Store or
// TokenURL is missing, TokenURL is not an absolute http(s) URL, or TokenTTL
// exceeds MaxTokenTTL.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, dtm.Errorf(dtm.EInvalid, "auth: no store")
	}
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, dtm.Errorf(dtm.EInvalid, "auth: token URL %q must be an absolute http(s) URL without query or fragment", cfg.TokenURL)
	}
	if cfg.TokenTTL < 0 || cfg.TokenTTL > MaxTokenTTL {
		return nil, dtm.Errorf(dtm.EInvalid, "auth: token lifetime %s exceeds %s", cfg.TokenTTL, MaxTokenTTL)
	}
	s := &Server{
		store:    cfg.Store,
		tokenURL: cfg.TokenURL,
		ttl:      cmpOr(cfg.TokenTTL, MaxTokenTTL),
		leeway:   cmpOr(cfg.Leeway, DefaultLeeway),
		public:   map[string]bool{},
		clock:    cfg.Clock,
		rand:     cfg.Rand,
		logger:   cfg.Logger,
	}
	if s.clock == nil {
		s.clock = dtm.SystemClock{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	paths := cfg.PublicPaths
	if paths == nil {
		paths = DefaultPublicPaths()
	}
	for _, p := range paths {
		s.public[p] = true
	}
	s.keys = newKeySource(cfg.HTTPClient, cmpOr(cfg.JWKSTimeout, 10*time.Second),
		cmpOr(cfg.JWKSCacheTTL, 10*time.Minute), s.clock, s.logger)
	return s, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// TokenURL returns the configured token endpoint URL.
func (s *Server) TokenURL() string { return s.tokenURL }

// Register adds the discovery and token endpoints to mux:
// GET PathSmartConfig, GET PathFHIRSmartConfig and POST PathToken.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathSmartConfig, s.handleSmartConfig)
	mux.HandleFunc("GET "+PathFHIRSmartConfig, s.handleSmartConfig)
	mux.HandleFunc(PathToken, s.handleToken)
}

// Handler returns a handler serving only the endpoints of Register.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// SmartConfiguration is the body of /.well-known/smart-configuration for a
// Backend Services server (SMART App Launch 2.x).
type SmartConfiguration struct {
	TokenEndpoint   string   `json:"token_endpoint"`
	AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
	AuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypes      []string `json:"grant_types_supported"`
	ScopesSupported []string `json:"scopes_supported"`
	Capabilities    []string `json:"capabilities"`
}

// Configuration returns the server's discovery document.
func (s *Server) Configuration() SmartConfiguration {
	return SmartConfiguration{
		TokenEndpoint:   s.tokenURL,
		AuthMethods:     []string{"private_key_jwt"},
		AuthSigningAlgs: Algorithms(),
		GrantTypes:      []string{grantClientCredentials},
		ScopesSupported: []string{"system/*.rs", "system/*.read", ScopeIngest},
		Capabilities:    []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"},
	}
}

func (s *Server) handleSmartConfig(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	writeJSON(w, http.StatusOK, s.Configuration())
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// oauthError is an OAuth 2.0 error response (RFC 6749 section 5.2). Its
// description is sent to the caller, so it never contains secrets.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	status      int
}

func (e *oauthError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Description) }

// OAuth error codes used by the token endpoint.
const (
	errInvalidRequest       = "invalid_request"
	errInvalidClient        = "invalid_client"
	errInvalidGrant         = "invalid_grant"
	errUnsupportedGrantType = "unsupported_grant_type"
	errInvalidScope         = "invalid_scope"
	errServer               = "server_error"
)

func badRequest(code, format string, args ...any) *oauthError {
	return &oauthError{Code: code, Description: fmt.Sprintf(format, args...), status: http.StatusBadRequest}
}

func badClient(format string, args ...any) *oauthError {
	return &oauthError{Code: errInvalidClient, Description: fmt.Sprintf(format, args...), status: http.StatusUnauthorized}
}

// asOAuth converts err to the response to send: an *oauthError as is,
// anything else as a server_error whose detail is not sent.
func asOAuth(err error) *oauthError {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe
	}
	return &oauthError{Code: errServer, Description: "internal error", status: http.StatusInternalServerError}
}
