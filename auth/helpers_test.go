package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// epoch is where test clocks start: whole seconds, as JWT times are.
var epoch = time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC)

// testClock is a manual clock, safe for concurrent use.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Test keys, made once per test binary (RSA generation is slow).
var (
	keysOnce sync.Once
	ecKey    *ecdsa.PrivateKey
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
)

func testKeys(tb testing.TB) {
	tb.Helper()
	keysOnce.Do(func() {
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
}

// jwks returns a JWK Set JSON of the public halves of keys with the given
// kids.
func jwks(tb testing.TB, keys map[string]crypto.Signer) string {
	tb.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// Practices and clients of the fixture.
const (
	practiceA = "A81001"
	practiceB = "A81002"
	clientID  = "tss-b"
	ingestID  = "sss-ingest"
)

// fixture is a running source: an auth.Server over a real SQLite store
// behind a loopback HTTP server, with one protected test handler.
type fixture struct {
	t      *testing.T
	store  *sqlite.DB
	clock  *testClock
	server *auth.Server
	http   *httptest.Server
	url    string // base URL
	h      atomic.Pointer[http.Handler]
}

// setHandler replaces the handler the fixture's HTTP server serves.
func (f *fixture) setHandler(h http.Handler) { f.h.Store(&h) }

// newFixture starts a source whose client clientID (keys "ec", "rsa")
// may read practiceA, and whose ingest client ingestID (key "ec") may
// write practiceA.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	testKeys(t)
	f := &fixture{t: t, store: mustOpenStore(t), clock: &testClock{now: epoch}}
	f.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*f.h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(f.http.Close)
	f.url = f.http.URL
	f.server = f.newServer(auth.Config{})
	mux := http.NewServeMux()
	f.server.Register(mux)
	mux.HandleFunc("GET /fhir/metadata", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	mux.HandleFunc("GET /fhir/Group/{ods}/$export", func(w http.ResponseWriter, r *http.Request) {
		p, ok := dtm.PrincipalFromContext(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		if !p.CanRead(r.PathValue("ods")) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		json.NewEncoder(w).Encode(p)
	})
	f.setHandler(f.server.Middleware(mux))
	f.addClient(dtm.Client{ID: clientID, Name: "Target B",
		JWKS:      jwks(t, map[string]crypto.Signer{"ec": ecKey, "rsa": rsaKey}),
		Practices: []string{practiceA}})
	f.addClient(dtm.Client{ID: ingestID, Name: "Source system", Ingest: true,
		JWKS: jwks(t, map[string]crypto.Signer{"ec": ecKey}), Practices: []string{practiceA}})
	return f
}

// mustOpenStore opens a new SQLite store in a temporary directory, closed
// when tb ends.
func mustOpenStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "dtm.db"),
		sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// newServer returns an auth.Server on the fixture's store and clock with
// cfg's other fields.
func (f *fixture) newServer(cfg auth.Config) *auth.Server {
	f.t.Helper()
	cfg.Store, cfg.Clock, cfg.TokenURL = f.store, f.clock, f.url+auth.PathToken
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := auth.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) tokenURL() string { return f.url + auth.PathToken }

func (f *fixture) addClient(c dtm.Client) {
	f.t.Helper()
	c.CreatedAt = epoch
	if _, err := f.store.CreateClient(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
}

// claims returns valid assertion claims for client at the fixture's time.
func (f *fixture) claims(client string) jwt.Claims {
	now := f.clock.Now()
	return jwt.Claims{
		Issuer: client, Subject: client, Audience: jwt.Audience{f.tokenURL()},
		Expiry: jwt.NewNumericDate(now.Add(4 * time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		ID: rand.Text(),
	}
}

// sign returns a compact JWS of claims signed with key under alg and kid.
func sign(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// rawJWS builds a compact JWS from a header and claims, with the signature
// computed by sig over the signing input (nil: empty signature).
func rawJWS(tb testing.TB, header map[string]any, claims any, sig func(input []byte) []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var s []byte
	if sig != nil {
		s = sig([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(s)
}

// tokenForm returns a valid token request form with the given assertion.
func tokenForm(assertion, scope string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {auth.AssertionType},
		"client_assertion":      {assertion},
	}
}

// oauthResult is a token endpoint response.
type oauthResult struct {
	Status int
	auth.TokenResponse
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// postToken posts form to the token endpoint.
func (f *fixture) postToken(form url.Values) oauthResult {
	f.t.Helper()
	resp, err := http.Post(f.tokenURL(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r oauthResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		f.t.Fatalf("token response: %v", err)
	}
	r.Status = resp.StatusCode
	return r
}

// mustToken gets an access token for client with an ES384 assertion.
func (f *fixture) mustToken(client, scope string) string {
	f.t.Helper()
	r := f.postToken(tokenForm(sign(f.t, jose.ES384, ecKey, "ec", f.claims(client)), scope))
	if r.Status != http.StatusOK {
		f.t.Fatalf("token request: %d %s: %s", r.Status, r.Error, r.Description)
	}
	return r.AccessToken
}

// get requests path with the bearer token (none when "").
func (f *fixture) get(path, token string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.url+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// wantOAuthError checks a token response's status and error code.
func wantOAuthError(t *testing.T, r oauthResult, status int, code string) {
	t.Helper()
	if r.Status != status || r.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.Error, r.Description, status, code)
	}
	if r.AccessToken != "" {
		t.Fatalf("an access token was issued with an error")
	}
}
