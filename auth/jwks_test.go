package auth_test

import (
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwksHost is a TLS server publishing a client's JWKS, counting fetches.
type jwksHost struct {
	srv     *httptest.Server
	body    atomic.Pointer[string]
	fetches atomic.Int32
	delay   time.Duration
}

func newJWKSHost(t *testing.T, body string) *jwksHost {
	h := &jwksHost{}
	h.body.Store(&body)
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		h.fetches.Add(1)
		if h.delay > 0 {
			select {
			case <-time.After(h.delay):
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(*h.body.Load()))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jwks.json", http.StatusFound)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	h.srv = httptest.NewTLSServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

// jwksFixture is a fixture whose server fetches JWKS URLs from host, with
// client "url-client" registered at host's /jwks.json (key "rsa").
func jwksFixture(t *testing.T, cfg auth.Config) (*fixture, *jwksHost) {
	f := newFixture(t)
	host := newJWKSHost(t, jwks(t, map[string]crypto.Signer{"rsa": rsaKey}))
	cfg.HTTPClient = host.srv.Client()
	f.server = f.newServer(cfg)
	mux := http.NewServeMux()
	f.server.Register(mux)
	f.setHandler(mux)
	f.addClient(dtm.Client{ID: "url-client", JWKSURL: host.srv.URL + "/jwks.json", Practices: []string{practiceA}})
	return f, host
}

func TestServer_JWKSURL(t *testing.T) {
	assert := func(f *fixture, kid string, key any) oauthResult {
		return f.postToken(tokenForm(sign(t, jose.RS384, key, kid, f.claims("url-client")), "system/*.rs"))
	}
	t.Run("OKCached", func(t *testing.T) {
		f, host := jwksFixture(t, auth.Config{})
		for range 3 {
			if r := assert(f, "rsa", rsaKey); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Description)
			}
		}
		if n := host.fetches.Load(); n != 1 {
			t.Errorf("%d fetches, want 1 (cached)", n)
		}
		f.clock.Advance(11 * time.Minute)
		if r := assert(f, "rsa", rsaKey); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Description)
		}
		if n := host.fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2 (cache expired)", n)
		}
	})
	t.Run("OKRotation", func(t *testing.T) {
		f, host := jwksFixture(t, auth.Config{})
		if r := assert(f, "rsa", rsaKey); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Description)
		}
		body := jwks(t, map[string]crypto.Signer{"rsa": rsaKey, "new": rsaKey2})
		host.body.Store(&body)
		f.clock.Advance(11 * time.Second)
		if r := assert(f, "new", rsaKey2); r.Status != 200 {
			t.Fatalf("new key after rotation: %d %s", r.Status, r.Description)
		}
		if n := host.fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2 (one refresh for the unknown kid)", n)
		}
	})
	t.Run("ErrUnknownKidRefreshLimited", func(t *testing.T) {
		f, host := jwksFixture(t, auth.Config{})
		for range 5 {
			wantOAuthError(t, assert(f, "ghost", rsaKey), 401, "invalid_client")
		}
		if n := host.fetches.Load(); n != 1 {
			t.Errorf("%d fetches for unknown kids within 10 s, want 1", n)
		}
		f.clock.Advance(11 * time.Second)
		wantOAuthError(t, assert(f, "ghost", rsaKey), 401, "invalid_client")
		if n := host.fetches.Load(); n != 2 {
			t.Errorf("%d fetches, want 2 (one refresh)", n)
		}
	})
	t.Run("OKJKURegistered", func(t *testing.T) {
		f, host := jwksFixture(t, auth.Config{})
		opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "rsa").WithHeader("jku", host.srv.URL+"/jwks.json")
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: rsaKey}, opts)
		a := mustSerialize(t, signer, f.claims("url-client"))
		if r := f.postToken(tokenForm(a, "system/*.rs")); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Description)
		}
	})
	for name, path := range map[string]string{"ErrRedirect": "/moved", "ErrServerError": "/broken"} {
		t.Run(name, func(t *testing.T) {
			f, host := jwksFixture(t, auth.Config{})
			f.addClient(dtm.Client{ID: "c2", JWKSURL: host.srv.URL + path, Practices: []string{practiceA}})
			r := f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "rsa", f.claims("c2")), "system/*.rs"))
			wantOAuthError(t, r, 401, "invalid_client")
		})
	}
	t.Run("ErrNotHTTPS", func(t *testing.T) {
		f, _ := jwksFixture(t, auth.Config{})
		plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(jwks(t, map[string]crypto.Signer{"rsa": rsaKey})))
		}))
		defer plain.Close()
		f.addClient(dtm.Client{ID: "c2", JWKSURL: plain.URL + "/jwks.json", Practices: []string{practiceA}})
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "rsa", f.claims("c2")), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		f, host := jwksFixture(t, auth.Config{JWKSTimeout: 50 * time.Millisecond})
		host.delay = time.Second
		start := time.Now()
		wantOAuthError(t, assert(f, "rsa", rsaKey), 401, "invalid_client")
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("token request took %s; the JWKS fetch should time out after 50ms", d)
		}
	})
}

func mustSerialize(t *testing.T, signer jose.Signer, claims any) string {
	t.Helper()
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	t.Run("OK", func(t *testing.T) {
		body := `{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"X25519","x":"AAAA"},` +
			jwks(t, map[string]crypto.Signer{"ec": ecKey})[len(`{"keys":[`):]
		keys, err := auth.ParseJWKS([]byte(body))
		if err != nil || len(keys) != 1 || keys[0].KeyID != "ec" {
			t.Fatalf("keys %v, %v; want only the EC key", keys, err)
		}
	})
	t.Run("ErrPrivate", func(t *testing.T) {
		b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ecKey, KeyID: "p"}}})
		if _, err := auth.ParseJWKS(b); err == nil {
			t.Error("a private key was accepted")
		}
	})
	t.Run("ErrNotASet", func(t *testing.T) {
		for _, b := range []string{`[]`, `{}`, `{"keys":{}}`, `nope`} {
			if _, err := auth.ParseJWKS([]byte(b)); err == nil {
				t.Errorf("%s accepted", b)
			}
		}
	})
}
