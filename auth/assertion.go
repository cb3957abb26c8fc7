package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AssertionType is the only client_assertion_type the token endpoint accepts.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Signature algorithms accepted for client assertions.
const (
	RS384 = "RS384"
	ES384 = "ES384"
	RS512 = "RS512"
)

// allowedAlgs is the closed list of assertion algorithms. It is passed to
// go-jose so that no other algorithm (none, HS*, PS*, ...) can be selected by
// a token's header.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384, jose.RS512}

// Algorithms returns the accepted assertion signature algorithms.
func Algorithms() []string { return []string{RS384, ES384, RS512} }

// Size limits of assertions.
const (
	maxAssertionLen = 16 << 10
	maxJTILen       = 255
)

// assertionHeader is the JOSE header of a client assertion, decoded by us
// before any other processing.
type assertionHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	Jku string `json:"jku"`
	// Crit lists extensions the verifier must understand; we understand
	// none, so any value is refused.
	Crit json.RawMessage `json:"crit"`
	// Embedded keys (jwk, x5c, x5u) would let the token choose its own
	// key; they are refused.
	JWK json.RawMessage `json:"jwk"`
	X5C json.RawMessage `json:"x5c"`
	X5U json.RawMessage `json:"x5u"`
}

// assertion is a parsed, not yet verified, client assertion.
type assertion struct {
	header assertionHeader
	token  *jwt.JSONWebToken
	// issuer is the unverified iss claim, used only to find the client
	// whose keys then verify the signature.
	issuer string
}

// parseAssertion checks the structure and header of a compact JWS client
// assertion, before any key is looked up or any signature checked. It
// returns an invalid_client error for anything malformed, an algorithm
// other than RS384, ES384 or RS512, a missing kid, a crit header or an
// embedded key.
func parseAssertion(s string) (assertion, error) {
	var a assertion
	if s == "" {
		return a, badClient("client_assertion is required")
	}
	if len(s) > maxAssertionLen {
		return a, badClient("client_assertion is too long")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return a, badClient("client_assertion is not a compact JWS (header.payload.signature)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return a, badClient("client_assertion header is not base64url")
	}
	if err := json.Unmarshal(raw, &a.header); err != nil {
		return a, badClient("client_assertion header is not a JSON object")
	}
	h := a.header
	switch {
	case !slices.Contains(Algorithms(), h.Alg):
		return a, badClient("client_assertion alg must be one of %s", strings.Join(Algorithms(), ", "))
	case h.Kid == "":
		return a, badClient("client_assertion header must have a kid")
	case h.Typ != "" && !strings.EqualFold(h.Typ, "JWT"):
		return a, badClient("client_assertion typ must be JWT")
	case h.Crit != nil:
		return a, badClient("client_assertion crit header is not supported")
	case h.JWK != nil || h.X5C != nil || h.X5U != nil:
		return a, badClient("client_assertion may not carry its own key (jwk, x5c, x5u)")
	}
	// The algorithm list makes go-jose refuse every other alg itself, so
	// an HS256 token "signed" with a public key can never be verified.
	a.token, err = jwt.ParseSigned(s, allowedAlgs)
	if err != nil {
		return a, badClient("client_assertion is not a valid JWS")
	}
	if len(a.token.Headers) != 1 || string(a.token.Headers[0].Algorithm) != h.Alg || a.token.Headers[0].KeyID != h.Kid {
		return a, badClient("client_assertion header is inconsistent")
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := a.token.UnsafeClaimsWithoutVerification(&c); err != nil {
		return a, badClient("client_assertion claims are not a JSON object")
	}
	if c.Issuer == "" {
		return a, badClient("client_assertion must have iss (the client id)")
	}
	a.issuer = c.Issuer
	return a, nil
}

// verifyAssertion authenticates a client by its assertion: it finds the
// client named by iss, selects the one registered key matching the header,
// verifies the signature, checks the claims and records the jti. It returns
// the client, or an invalid_client error (a server_error for store
// failures).
func (s *Server) verifyAssertion(ctx context.Context, raw string) (dtm.Client, error) {
	a, err := parseAssertion(raw)
	if err != nil {
		return dtm.Client{}, err
	}
	client, err := s.store.Client(ctx, a.issuer)
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return dtm.Client{}, badClient("unknown client")
	} else if err != nil {
		return dtm.Client{}, err
	}
	if client.Disabled {
		return client, badClient("client is disabled")
	}
	key, err := s.keys.key(ctx, client, a.header)
	if err != nil {
		return client, err
	}
	var claims jwt.Claims
	if err := a.token.Claims(key.Key, &claims); err != nil {
		return client, badClient("client_assertion signature does not verify")
	}
	now := s.clock.Now()
	if err := checkClaims(claims, client.ID, s.tokenURL, now, s.leeway); err != nil {
		return client, err
	}
	err = s.store.UseJTI(ctx, client.ID, claims.ID, claims.Expiry.Time().Add(s.leeway), now)
	if dtm.ErrorCode(err) == dtm.EConflict {
		return client, badClient("client_assertion jti has already been used")
	} else if err != nil {
		return client, err
	}
	return client, nil
}

// checkClaims checks a verified assertion's claims: iss and sub are the
// client id, aud is exactly the token URL, exp is present, not past and at
// most MaxAssertionLifetime ahead, nbf and iat (when present) are not in
// the future, and jti is present. Times are compared with leeway for clock
// skew. It returns an invalid_client error naming the failed check.
func checkClaims(c jwt.Claims, clientID, tokenURL string, now time.Time, leeway time.Duration) error {
	switch {
	case c.Issuer != clientID:
		return badClient("client_assertion iss must be the client id")
	case c.Subject != clientID:
		return badClient("client_assertion sub must be the client id")
	case len(c.Audience) != 1 || c.Audience[0] != tokenURL:
		return badClient("client_assertion aud must be the token URL %s", tokenURL)
	case c.Expiry == nil:
		return badClient("client_assertion must have exp")
	case now.After(c.Expiry.Time().Add(leeway)):
		return badClient("client_assertion has expired")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + leeway)):
		return badClient("client_assertion exp is more than %s ahead", MaxAssertionLifetime)
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(leeway)):
		return badClient("client_assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(leeway)):
		return badClient("client_assertion iat is in the future")
	case c.ID == "":
		return badClient("client_assertion must have jti")
	case len(c.ID) > maxJTILen:
		return badClient("client_assertion jti is too long")
	}
	return nil
}
