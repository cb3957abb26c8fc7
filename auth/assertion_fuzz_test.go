package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzAssertion feeds arbitrary strings to the client assertion parser and,
// when one parses, to key selection, signature verification and the claim
// checks. Nothing may panic; the parser may accept only RS384, ES384 or
// RS512 with a kid and an iss, consistently with go-jose's own reading of
// the header; and any error must be an invalid_client OAuth error.
// Seeds: f.Add below and testdata/fuzz/FuzzAssertion.
func FuzzAssertion(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	keys := []jose.JSONWebKey{{Key: key.Public(), KeyID: "k", Use: "sig"}}
	const tokenURL = "https://dtm.example/auth/token"
	now := time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC)
	c := ClientCredentials{TokenURL: tokenURL, ClientID: "c", Key: key, KeyID: "k"}
	valid, err := c.Assertion(now)
	if err != nil {
		f.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		valid,
		valid + "x",
		valid[:len(valid)-2],
		b64([]byte(`{"alg":"none","kid":"k"}`)) + "." + b64([]byte(`{"iss":"c"}`)) + ".",
		b64([]byte(`{"alg":"HS256","kid":"k"}`)) + "." + b64([]byte(`{"iss":"c"}`)) + "." + b64([]byte("sig")),
		b64([]byte(`{"alg":"ES384","kid":"k","crit":["b64"],"b64":false}`)) + "." + b64([]byte(`{"iss":"c"}`)) + ".AA",
		b64([]byte(`{"alg":"ES384","alg":"none","kid":"k"}`)) + "." + b64([]byte(`{"iss":"c"}`)) + ".AA",
		b64([]byte(`{"alg":"ES384","kid":"k"}`)) + "." + b64([]byte(`{"iss":"c","aud":["a","b"],"exp":1e300}`)) + ".AA",
		"", ".", "..", "a.b.c", "eyJ9.eyJ9.eyJ9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAssertion(s)
		if err != nil {
			var oe *oauthError
			if !errors.As(err, &oe) || oe.Code != errInvalidClient {
				t.Fatalf("error %v is not invalid_client", err)
			}
			return
		}
		h := a.header
		if !slices.Contains(Algorithms(), h.Alg) || h.Kid == "" || a.issuer == "" {
			t.Fatalf("accepted header %+v, iss %q", h, a.issuer)
		}
		if len(a.token.Headers) != 1 || string(a.token.Headers[0].Algorithm) != h.Alg {
			t.Fatalf("our alg %q, go-jose's %v", h.Alg, a.token.Headers)
		}
		k, err := selectKey(keys, h)
		if err != nil {
			return
		}
		var claims jwt.Claims
		if err := a.token.Claims(k.Key, &claims); err != nil {
			return
		}
		if h.Alg != ES384 {
			t.Fatalf("a %s assertion verified with an EC key", h.Alg)
		}
		checkClaims(claims, a.issuer, tokenURL, now, DefaultLeeway)
	})
}
