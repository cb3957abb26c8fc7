package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/dtm-project/dtm"
)

// Middleware authenticates every request to next except those to a public
// path (Config.PublicPaths): it requires an "Authorization: Bearer" access
// token issued by this server, unexpired and unrevoked, and serves next with
// the token's dtm.Principal in the request context. A request without a
// valid token gets 401 with a WWW-Authenticate: Bearer challenge and a FHIR
// OperationOutcome (issue code "login") and is audited; a store failure gets
// 500. Requests to public paths are served without a principal.
func (s *Server) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := withRemote(r.Context(), r.RemoteAddr)
		if s.public[r.URL.Path] {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		p, err := s.Authenticate(ctx, r.Header.Get("Authorization"))
		if err != nil {
			s.refuse(ctx, w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(ctx, p)))
	})
}

// Authenticate returns the principal of an Authorization header value
// ("Bearer <token>"). It returns an EUnauthorized error when the header is
// missing or malformed or the token is unknown, expired or revoked, and
// another error when the store fails.
func (s *Server) Authenticate(ctx context.Context, authorization string) (dtm.Principal, error) {
	scheme, tok, _ := strings.Cut(authorization, " ")
	if authorization == "" {
		return dtm.Principal{}, errNoToken
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return dtm.Principal{}, dtm.Errorf(dtm.EUnauthorized, "the Authorization header must be a Bearer token")
	}
	tok = strings.TrimSpace(tok)
	if !wellFormedToken(tok) {
		return dtm.Principal{}, dtm.Errorf(dtm.EUnauthorized, "invalid access token")
	}
	t, err := s.store.Token(ctx, HashToken(tok))
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return dtm.Principal{}, dtm.Errorf(dtm.EUnauthorized, "invalid access token")
	} else if err != nil {
		return dtm.Principal{}, fmt.Errorf("look up token: %w", err)
	}
	switch now := s.clock.Now(); {
	case !t.RevokedAt.IsZero():
		return dtm.Principal{}, dtm.Errorf(dtm.EUnauthorized, "the access token has been revoked")
	case !now.Before(t.ExpiresAt):
		return dtm.Principal{}, dtm.Errorf(dtm.EUnauthorized, "the access token has expired")
	}
	p := dtm.Principal{Client: t.Client, Practices: t.Practices, Ingest: t.Ingest}
	if !t.Ingest {
		p.Types = ScopeTypes(t.Scopes)
	}
	return p, nil
}

// errNoToken is Authenticate's error for a request without credentials.
var errNoToken = dtm.Errorf(dtm.EUnauthorized, "an access token is required (Authorization: Bearer)")

// wellFormedToken reports whether tok could be one of our tokens: 43
// base64url characters. Anything else is refused without a store lookup.
func wellFormedToken(tok string) bool {
	if len(tok) != base64Len(tokenBytes) {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func base64Len(n int) int { return (n*8 + 5) / 6 }

// refuse answers a request that failed authentication and audits it.
func (s *Server) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, err error) {
	if dtm.ErrorCode(err) != dtm.EUnauthorized {
		s.logger.Error("authenticate request", "err", err)
		writeOutcome(w, http.StatusInternalServerError, "exception", "internal error")
		return
	}
	msg := dtm.ErrorMessage(err)
	challenge := `Bearer realm="dtm"`
	if err != errNoToken {
		challenge += `, error="invalid_token", error_description="` + msg + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	if aerr := s.Record(ctx, dtm.AuditEvent{
		Action:  dtm.AuditAccess,
		Outcome: dtm.OutcomeDenied,
		Detail:  r.Method + " " + truncate(r.URL.Path, 200) + ": " + msg,
	}); aerr != nil {
		s.logger.Error("audit refused request", "err", aerr)
	}
	writeOutcome(w, http.StatusUnauthorized, "login", msg)
}

// outcome is a minimal FHIR OperationOutcome.
type outcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []outcomeIssue `json:"issue"`
}

type outcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}

// writeOutcome writes a FHIR OperationOutcome with one error issue.
func writeOutcome(w http.ResponseWriter, status int, code, diagnostics string) {
	b, _ := json.Marshal(outcome{ResourceType: "OperationOutcome",
		Issue: []outcomeIssue{{Severity: "error", Code: code, Diagnostics: diagnostics}}})
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

type remoteKey struct{}

// withRemote returns ctx carrying the caller's address (host only), which
// Record adds to audit events.
func withRemote(ctx context.Context, remoteAddr string) context.Context {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return context.WithValue(ctx, remoteKey{}, host)
}

func remoteFromContext(ctx context.Context) string {
	s, _ := ctx.Value(remoteKey{}).(string)
	return s
}

// AllowAll is the middleware of --auth none, for test environments on
// loopback only: it serves every request with a principal that may read and
// ingest every practice. The serve command must refuse it on a non-loopback
// address (see CheckLoopback).
func AllowAll(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := dtm.Principal{Practices: []string{dtm.AllPractices}, Ingest: true, Admin: true}
		next.ServeHTTP(w, r.WithContext(dtm.NewContextWithPrincipal(r.Context(), p)))
	})
}

// CheckLoopback returns an EInvalid error unless addr (host:port, as given
// to --addr) listens only on a loopback interface; an empty host (all
// interfaces) is refused.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return dtm.Errorf(dtm.EInvalid, "address %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return dtm.Errorf(dtm.EInvalid, "--auth none is allowed only on a loopback address (127.0.0.1, ::1 or localhost), not %q", addr)
}
