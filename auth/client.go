package auth

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultRefreshBefore is how long before expiry ClientCredentials replaces
// a cached token, so that a request never starts with a token about to
// lapse.
const DefaultRefreshBefore = 30 * time.Second

// ClientCredentials is the target side of SMART Backend Services: it signs
// client assertions with the client's private key and exchanges them at the
// token endpoint for access tokens, which it caches and replaces shortly
// before they expire (a full-practice pull outlives one 5-minute token).
//
// Set the exported fields before the first call and do not change them
// afterwards; do not copy a ClientCredentials after first use. A ClientCredentials is safe for concurrent use; concurrent
// Token calls share one token request.
type ClientCredentials struct {
	TokenURL string        // the source's token endpoint (see Discover)
	ClientID string        // the client id registered at the source
	Key      crypto.Signer // *ecdsa.PrivateKey (P-384) or *rsa.PrivateKey, or any signer of those
	KeyID    string        // kid of Key in the registered JWKS (see Thumbprint)
	// Alg is ES384, RS384 or RS512; when empty ES384 for an EC key and
	// RS384 for an RSA key.
	Alg string
	// Scope requested; "system/*.rs" when empty.
	Scope string
	// Clock tells the time; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// HTTPClient makes token requests; http.DefaultClient when nil.
	HTTPClient *http.Client
	// RefreshBefore is how long before expiry a token is replaced;
	// DefaultRefreshBefore when zero.
	RefreshBefore time.Duration

	semOnce sync.Once
	sem     chan struct{} // a one-slot semaphore, held while the cache is read or refilled
	token   string
	expires time.Time
}

func (c *ClientCredentials) initSem() {
	c.semOnce.Do(func() { c.sem = make(chan struct{}, 1) })
}

func (c *ClientCredentials) lock(ctx context.Context) error {
	c.initSem()
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *ClientCredentials) unlock() { <-c.sem }

func (c *ClientCredentials) clock() dtm.Clock {
	if c.Clock == nil {
		return dtm.SystemClock{}
	}
	return c.Clock
}

// Token returns a valid access token, from the cache when it has more than
// RefreshBefore left, otherwise from a new token request. It returns ctx's
// error if ctx ends first, and an EUnauthorized error carrying the token
// endpoint's OAuth error when the source refuses the request.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	if err := c.lock(ctx); err != nil {
		return "", err
	}
	defer c.unlock()
	now := c.clock().Now()
	if c.token != "" && now.Add(c.refreshBefore()).Before(c.expires) {
		return c.token, nil
	}
	resp, err := c.request(ctx, now)
	if err != nil {
		return "", err
	}
	c.token, c.expires = resp.AccessToken, now.Add(time.Duration(resp.ExpiresIn)*time.Second)
	return c.token, nil
}

// Invalidate forgets token if it is the cached one, so that the next Token
// call requests a new one. Call it when a request with token got 401.
func (c *ClientCredentials) Invalidate(token string) {
	c.initSem()
	c.sem <- struct{}{}
	defer c.unlock()
	if c.token == token {
		c.token, c.expires = "", time.Time{}
	}
}

func (c *ClientCredentials) refreshBefore() time.Duration {
	if c.RefreshBefore > 0 {
		return c.RefreshBefore
	}
	return DefaultRefreshBefore
}

// request performs one token request.
func (c *ClientCredentials) request(ctx context.Context, now time.Time) (TokenResponse, error) {
	assertion, err := c.Assertion(now)
	if err != nil {
		return TokenResponse{}, err
	}
	scope := c.Scope
	if scope == "" {
		scope = "system/*.rs"
	}
	form := url.Values{
		"grant_type":            {grantClientCredentials},
		"scope":                 {scope},
		"client_assertion_type": {AssertionType},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return TokenResponse{}, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return TokenResponse{}, fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return TokenResponse{}, fmt.Errorf("token request: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var oe oauthError
		if json.Unmarshal(body, &oe) == nil && oe.Code != "" {
			return TokenResponse{}, dtm.Errorf(dtm.EUnauthorized, "token request refused (%s): %s: %s", resp.Status, oe.Code, oe.Description)
		}
		return TokenResponse{}, dtm.Errorf(dtm.EUnauthorized, "token request refused: %s", resp.Status)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return TokenResponse{}, fmt.Errorf("token response: %w", err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "bearer") || tr.ExpiresIn <= 0 {
		return TokenResponse{}, fmt.Errorf("token response: no bearer token with a lifetime")
	}
	return tr, nil
}

// Assertion returns a client assertion valid from now for 4 minutes: a JWT
// with iss = sub = ClientID, aud = TokenURL and a random jti, signed with Key.
// It returns an error if the key or algorithm is unusable.
func (c *ClientCredentials) Assertion(now time.Time) (string, error) {
	alg, err := signingAlg(c.Key, c.Alg)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(c.Key)},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", c.KeyID))
	if err != nil {
		return "", fmt.Errorf("assertion signer: %w", err)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("assertion jti: %w", err)
	}
	claims := jwt.Claims{
		Issuer:   c.ClientID,
		Subject:  c.ClientID,
		Audience: jwt.Audience{c.TokenURL},
		Expiry:   jwt.NewNumericDate(now.Add(4 * time.Minute)),
		IssuedAt: jwt.NewNumericDate(now),
		ID:       base64.RawURLEncoding.EncodeToString(jti),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return s, nil
}

// Discover fetches base + "/.well-known/smart-configuration" (base is the
// source's base URL or its FHIR base) and returns it. It returns an error
// unless the response is 200 with a token endpoint.
func Discover(ctx context.Context, hc *http.Client, base string) (SmartConfiguration, error) {
	var sc SmartConfiguration
	if hc == nil {
		hc = http.DefaultClient
	}
	u := strings.TrimRight(base, "/") + PathSmartConfig
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return sc, fmt.Errorf("discover: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return sc, fmt.Errorf("discover: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sc, fmt.Errorf("discover %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sc); err != nil {
		return sc, fmt.Errorf("discover %s: %w", u, err)
	}
	if sc.TokenEndpoint == "" {
		return sc, fmt.Errorf("discover %s: no token_endpoint", u)
	}
	return sc, nil
}
