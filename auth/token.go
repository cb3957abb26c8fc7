package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

const (
	grantClientCredentials = "client_credentials"
	maxTokenRequestBytes   = 64 << 10
	tokenBytes             = 32 // 256 bits
)

// TokenResponse is the token endpoint's success response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "bearer"
	ExpiresIn   int    `json:"expires_in"` // seconds
	Scope       string `json:"scope"`
}

// handleToken serves POST /auth/token: OAuth2 client_credentials with a JWT
// client assertion (SMART Backend Services). Every request, granted or
// refused, is audited.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, badRequest(errInvalidRequest, "use POST"))
		return
	}
	ctx := withRemote(r.Context(), r.RemoteAddr)
	resp, client, err := s.token(ctx, w, r)
	event := dtm.AuditEvent{Client: client, Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess}
	if err != nil {
		oe := asOAuth(err)
		event.Outcome, event.Detail = dtm.OutcomeDenied, oe.Code+": "+oe.Description
		if oe.Code == errServer {
			event.Outcome = dtm.OutcomeError
			s.logger.Error("token request", "client", client, "err", err)
		}
		if aerr := s.Record(ctx, event); aerr != nil {
			s.logger.Error("audit token request", "err", aerr)
		}
		writeJSON(w, oe.status, oe)
		return
	}
	event.Detail = "granted " + resp.Scope
	if err := s.Record(ctx, event); err != nil {
		// An unaudited grant is not handed out: the token is revoked.
		s.logger.Error("audit token grant", "err", err)
		if rerr := s.RevokeToken(ctx, resp.AccessToken); rerr != nil {
			s.logger.Error("revoke unaudited token", "err", rerr)
		}
		oe := asOAuth(err)
		writeJSON(w, oe.status, oe)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// token validates a token request and issues a token. It returns the
// response, the client id to audit (the unverified iss when the request
// failed before the client was authenticated, truncated) and an error.
func (s *Server) token(ctx context.Context, w http.ResponseWriter, r *http.Request) (TokenResponse, string, error) {
	form, err := readForm(w, r)
	if err != nil {
		return TokenResponse{}, "", err
	}
	switch gt := form.Get("grant_type"); {
	case gt == "":
		return TokenResponse{}, "", badRequest(errInvalidRequest, "grant_type is required")
	case gt != grantClientCredentials:
		return TokenResponse{}, "", badRequest(errUnsupportedGrantType, "grant_type must be client_credentials")
	}
	if form.Get("client_assertion_type") != AssertionType {
		return TokenResponse{}, "", badRequest(errInvalidRequest, "client_assertion_type must be %s", AssertionType)
	}
	scopes, err := parseScopes(form.Get("scope"))
	if err != nil {
		return TokenResponse{}, "", err
	}
	client, err := s.verifyAssertion(ctx, form.Get("client_assertion"))
	who := truncate(client.ID, 128)
	if err != nil {
		return TokenResponse{}, who, err
	}
	if id := form.Get("client_id"); id != "" && id != client.ID {
		return TokenResponse{}, who, badClient("client_id does not match the assertion's iss")
	}
	if err := checkScopesForClient(scopes, client.Ingest); err != nil {
		return TokenResponse{}, who, err
	}
	resp, err := s.issue(ctx, client, scopes)
	return resp, who, err
}

// readForm reads an application/x-www-form-urlencoded body of at most
// maxTokenRequestBytes. Parameters in the URL query are ignored. It returns
// an invalid_request error for another content type, an unreadable body or
// a repeated parameter (RFC 6749 section 3.2).
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, badRequest(errInvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		return nil, badRequest(errInvalidRequest, "the body is not a valid form")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, badRequest(errInvalidRequest, "parameter %s is repeated", truncate(k, 40))
		}
	}
	return r.PostForm, nil
}

// issue creates, stores and returns a new access token for client.
func (s *Server) issue(ctx context.Context, client dtm.Client, scopes []string) (TokenResponse, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return TokenResponse{}, fmt.Errorf("token randomness: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.clock.Now()
	err := s.store.CreateToken(ctx, dtm.AccessToken{
		Hash:      HashToken(tok),
		Client:    client.ID,
		Scopes:    scopes,
		Practices: client.Practices,
		Ingest:    client.Ingest,
		IssuedAt:  now,
		ExpiresAt: now.Add(s.ttl),
	})
	if err != nil {
		return TokenResponse{}, fmt.Errorf("store token: %w", err)
	}
	return TokenResponse{
		AccessToken: tok,
		TokenType:   "bearer",
		ExpiresIn:   int(s.ttl.Seconds()),
		Scope:       strings.Join(scopes, " "),
	}, nil
}

// HashToken returns the form in which an access token is stored: the
// lower-case hex SHA-256 of the token string.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RevokeToken revokes one access token, given as the caller presents it.
// It returns an ENotFound error for a token that was never issued.
func (s *Server) RevokeToken(ctx context.Context, token string) error {
	if err := s.store.RevokeToken(ctx, HashToken(token), s.clock.Now()); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// RevokeClient revokes every access token of a client (after its
// registration is changed, disabled or removed) and returns how many.
func (s *Server) RevokeClient(ctx context.Context, clientID string) (int, error) {
	n, err := s.store.RevokeClientTokens(ctx, clientID, s.clock.Now())
	if err != nil {
		return 0, fmt.Errorf("revoke client tokens: %w", err)
	}
	return n, nil
}

// Prune removes expired access tokens and expired assertion ids from the
// store. Call it every few minutes (for example from a ticker in the serve
// command); it is safe to run on several replicas at once.
func (s *Server) Prune(ctx context.Context) error {
	now := s.clock.Now()
	if _, err := s.store.DeleteExpiredTokens(ctx, now); err != nil {
		return fmt.Errorf("prune tokens: %w", err)
	}
	if _, err := s.store.DeleteExpiredJTIs(ctx, now); err != nil {
		return fmt.Errorf("prune jtis: %w", err)
	}
	return nil
}

// PruneInterval is how often Run calls Prune.
const PruneInterval = 5 * time.Minute

// Run calls Prune at once and then every PruneInterval until ctx is done,
// and returns ctx's error. Prune failures are logged and retried at the next
// tick. Run it alongside the HTTP server (one per replica is fine).
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(PruneInterval)
	defer t.Stop()
	for {
		if err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("prune auth store", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
