package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestServer_SmartConfiguration(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{auth.PathSmartConfig, auth.PathFHIRSmartConfig} {
		t.Run(path, func(t *testing.T) {
			resp := f.get(path, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"token_endpoint":                                   `"` + f.tokenURL() + `"`,
				"token_endpoint_auth_methods_supported":            `["private_key_jwt"]`,
				"token_endpoint_auth_signing_alg_values_supported": `["RS384","ES384","RS512"]`,
				"grant_types_supported":                            `["client_credentials"]`,
			}
			for k, v := range want {
				b, _ := json.Marshal(got[k])
				if string(b) != v {
					t.Errorf("%s = %s, want %s", k, b, v)
				}
			}
			caps, _ := json.Marshal(got["capabilities"])
			scopes, _ := json.Marshal(got["scopes_supported"])
			if !strings.Contains(string(caps), `"client-confidential-asymmetric"`) || !strings.Contains(string(scopes), `"system/*.rs"`) {
				t.Errorf("capabilities %s, scopes %s", caps, scopes)
			}
		})
	}
}

func TestServer_Token(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			alg jose.SignatureAlgorithm
			key crypto.Signer
			kid string
		}{{jose.RS384, rsaKey, "rsa"}, {jose.ES384, ecKey, "ec"}, {jose.RS512, rsaKey, "rsa"}} {
			t.Run(string(tc.alg), func(t *testing.T) {
				f := newFixture(t)
				r := f.postToken(tokenForm(sign(t, tc.alg, tc.key, tc.kid, f.claims(clientID)), "system/*.rs"))
				if r.Status != http.StatusOK {
					t.Fatalf("status %d: %s %s", r.Status, r.Error, r.Description)
				}
				if r.TokenType != "bearer" || r.ExpiresIn != 300 || r.Scope != "system/*.rs" || len(r.AccessToken) < 43 {
					t.Errorf("response %+v", r.TokenResponse)
				}
				resp := f.get("/fhir/Group/"+practiceA+"/$export", r.AccessToken)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("protected request: %d", resp.StatusCode)
				}
				var p dtm.Principal
				json.NewDecoder(resp.Body).Decode(&p)
				if p.Client != clientID || len(p.Practices) != 1 || p.Practices[0] != practiceA || p.Ingest {
					t.Errorf("principal %+v", p)
				}
			})
		}
	})
	t.Run("OKStoresOnlyHash", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.read system/Patient.rs")
		if _, err := f.store.Token(context.Background(), tok); err == nil {
			t.Fatal("the token itself is a store key")
		}
		st, err := f.store.Token(context.Background(), auth.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		if st.Client != clientID || !st.ExpiresAt.Equal(epoch.Add(5*time.Minute)) || len(st.Scopes) != 2 {
			t.Errorf("stored %+v", st)
		}
	})
	t.Run("OKIngest", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(ingestID, auth.ScopeIngest)
		p, err := f.server.Authenticate(context.Background(), "Bearer "+tok)
		if err != nil || !p.Ingest || p.Client != ingestID {
			t.Fatalf("principal %+v, %v", p, err)
		}
	})
	t.Run("OKAudited", func(t *testing.T) {
		f := newFixture(t)
		f.mustToken(clientID, "system/*.rs")
		f.postToken(tokenForm("x.y.z", "system/*.rs"))
		events, _ := f.store.AuditEvents(context.Background(), dtm.AuditQuery{Action: dtm.AuditToken})
		if len(events) != 2 || events[0].Outcome != dtm.OutcomeSuccess || events[0].Client != clientID ||
			events[1].Outcome != dtm.OutcomeDenied || events[0].Remote != "127.0.0.1" {
			t.Fatalf("audit %+v", events)
		}
		for _, e := range events {
			if strings.Contains(e.Detail, "x.y.z") {
				t.Errorf("an assertion went into the audit log: %q", e.Detail)
			}
		}
	})

	t.Run("ErrGrantType", func(t *testing.T) {
		f := newFixture(t)
		form := tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")
		form.Set("grant_type", "authorization_code")
		wantOAuthError(t, f.postToken(form), 400, "unsupported_grant_type")
		form.Del("grant_type")
		wantOAuthError(t, f.postToken(form), 400, "invalid_request")
	})
	t.Run("ErrAssertionType", func(t *testing.T) {
		f := newFixture(t)
		form := tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		wantOAuthError(t, f.postToken(form), 400, "invalid_request")
	})
	t.Run("ErrContentType", func(t *testing.T) {
		f := newFixture(t)
		form := tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")
		resp, err := http.Post(f.tokenURL(), "application/json", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("ErrRepeatedParameter", func(t *testing.T) {
		f := newFixture(t)
		form := tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")
		form.Add("scope", "system/*.rs")
		wantOAuthError(t, f.postToken(form), 400, "invalid_request")
	})
	t.Run("ErrInvalidJWT", func(t *testing.T) {
		f := newFixture(t)
		for _, a := range []string{"", "not-a-jwt", "a.b.c", "eyJhbGciOiJFUzM4NCJ9.e30", "x.y.z.w.v"} {
			wantOAuthError(t, f.postToken(tokenForm(a, "system/*.rs")), 401, "invalid_client")
		}
		// A valid token with its signature altered.
		a := sign(t, jose.ES384, ecKey, "ec", f.claims(clientID))
		i := strings.LastIndexByte(a, '.')
		bad := a[:i+1] + strings.Repeat("A", len(a)-i-1)
		wantOAuthError(t, f.postToken(tokenForm(bad, "system/*.rs")), 401, "invalid_client")
		// A valid signature by a key registered to nobody.
		testKeys(t)
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.RS384, rsaKey2, "rsa", f.claims(clientID)), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrClaims", func(t *testing.T) {
		// Each case breaks one claim and must be refused for that reason.
		for _, tc := range []struct {
			name, reason string
			mutate       func(f *fixture, c *jwt.Claims)
		}{
			{"aud", "aud must be the token URL", func(f *fixture, c *jwt.Claims) { c.Audience = jwt.Audience{f.url + "/fhir"} }},
			{"audTwo", "aud must be", func(f *fixture, c *jwt.Claims) { c.Audience = jwt.Audience{f.tokenURL(), "https://other"} }},
			{"audSlash", "aud must be", func(f *fixture, c *jwt.Claims) { c.Audience = jwt.Audience{f.tokenURL() + "/"} }},
			{"audTokenPath", "aud must be", func(f *fixture, c *jwt.Claims) { c.Audience = jwt.Audience{auth.PathToken} }},
			{"expired", "has expired", func(f *fixture, c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(epoch.Add(-61 * time.Second)) }},
			{"farFuture", "more than 5m0s ahead", func(f *fixture, c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(epoch.Add(6*time.Minute + time.Second)) }},
			{"noExp", "must have exp", func(f *fixture, c *jwt.Claims) { c.Expiry = nil }},
			{"noJTI", "must have jti", func(f *fixture, c *jwt.Claims) { c.ID = "" }},
			{"jtiTooLong", "jti is too long", func(f *fixture, c *jwt.Claims) { c.ID = strings.Repeat("j", 256) }},
			{"sub", "sub must be the client id", func(f *fixture, c *jwt.Claims) { c.Subject = "someone-else" }},
			{"issUnknown", "unknown client", func(f *fixture, c *jwt.Claims) { c.Issuer, c.Subject = "nobody", "nobody" }},
			{"nbfFuture", "not valid yet", func(f *fixture, c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(epoch.Add(2 * time.Minute)) }},
			{"iatFuture", "iat is in the future", func(f *fixture, c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(epoch.Add(2 * time.Minute)) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				c := f.claims(clientID)
				tc.mutate(f, &c)
				r := f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", c), "system/*.rs"))
				wantOAuthError(t, r, 401, "invalid_client")
				if !strings.Contains(r.Description, tc.reason) {
					t.Errorf("refused for %q, want %q", r.Description, tc.reason)
				}
			})
		}
	})
	t.Run("ErrOtherClientsAssertion", func(t *testing.T) {
		// An assertion the ingest client signed (with a key both clients
		// registered) authenticates the ingest client only, which may not
		// have read scopes.
		f := newFixture(t)
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(ingestID)), "system/*.rs")), 400, "invalid_scope")
	})
	t.Run("OKLeeway", func(t *testing.T) {
		f := newFixture(t)
		c := f.claims(clientID)
		c.Expiry = jwt.NewNumericDate(epoch.Add(-59 * time.Second))
		if r := f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", c), "system/*.rs")); r.Status != 200 {
			t.Errorf("exp 59 s past (within leeway): %d %s", r.Status, r.Description)
		}
		c = f.claims(clientID)
		c.Expiry = jwt.NewNumericDate(epoch.Add(5 * time.Minute))
		if r := f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", c), "system/*.rs")); r.Status != 200 {
			t.Errorf("exp 5 min ahead: %d %s", r.Status, r.Description)
		}
	})
	t.Run("ErrReplay", func(t *testing.T) {
		f := newFixture(t)
		a := sign(t, jose.ES384, ecKey, "ec", f.claims(clientID))
		if r := f.postToken(tokenForm(a, "system/*.rs")); r.Status != 200 {
			t.Fatalf("first use: %d %s", r.Status, r.Description)
		}
		wantOAuthError(t, f.postToken(tokenForm(a, "system/*.rs")), 401, "invalid_client")
		// A restarted server (same store) still refuses it.
		f.server = f.newServer(auth.Config{})
		mux := http.NewServeMux()
		f.server.Register(mux)
		f.setHandler(mux)
		wantOAuthError(t, f.postToken(tokenForm(a, "system/*.rs")), 401, "invalid_client")
		// So does a different assertion reusing the jti.
		c := f.claims(clientID)
		var first jwt.Claims
		tok, _ := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.ES384})
		tok.UnsafeClaimsWithoutVerification(&first)
		c.ID = first.ID
		c.Expiry = jwt.NewNumericDate(epoch.Add(3 * time.Minute))
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "rsa", c), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrAlgNone", func(t *testing.T) {
		f := newFixture(t)
		for _, alg := range []string{"none", "None", "NONE", ""} {
			a := rawJWS(t, map[string]any{"alg": alg, "typ": "JWT", "kid": "ec"}, f.claims(clientID), nil)
			wantAlgRefused(t, f.postToken(tokenForm(a, "system/*.rs")))
		}
	})
	t.Run("ErrHS256PublicKey", func(t *testing.T) {
		f := newFixture(t)
		der, _ := x509.MarshalPKIXPublicKey(rsaKey.Public())
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		jwk, _ := json.Marshal(jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "rsa", Use: "sig"})
		for _, secret := range [][]byte{pemKey, der, jwk} {
			for _, alg := range []string{"HS256", "HS384", "HS512"} {
				a := rawJWS(t, map[string]any{"alg": alg, "typ": "JWT", "kid": "rsa"}, f.claims(clientID), func(in []byte) []byte {
					h := map[string]crypto.Hash{"HS256": crypto.SHA256, "HS384": crypto.SHA384, "HS512": crypto.SHA512}[alg]
					m := hmac.New(h.New, secret)
					m.Write(in)
					return m.Sum(nil)
				})
				wantAlgRefused(t, f.postToken(tokenForm(a, "system/*.rs")))
			}
		}
	})
	t.Run("ErrOtherAlgs", func(t *testing.T) {
		f := newFixture(t)
		for _, tc := range []struct {
			alg jose.SignatureAlgorithm
			key any
		}{{jose.RS256, rsaKey}, {jose.PS384, rsaKey}, {jose.ES256, mustEC256(t)}} {
			wantAlgRefused(t, f.postToken(tokenForm(sign(t, tc.alg, tc.key, "rsa", f.claims(clientID)), "system/*.rs")))
		}
	})
	t.Run("ErrHeader", func(t *testing.T) {
		f := newFixture(t)
		for name, hdr := range map[string]jose.Header{
			"noKid": {},
			"jku":   {ExtraHeaders: map[jose.HeaderKey]any{"kid": "ec", "jku": "https://attacker.example/jwks.json"}},
			"crit":  {ExtraHeaders: map[jose.HeaderKey]any{"kid": "ec", "crit": []string{"exp"}, "exp": 1}},
			"jwk":   {ExtraHeaders: map[jose.HeaderKey]any{"kid": "ec", "jwk": map[string]any{"kty": "EC"}}},
			"typ":   {ExtraHeaders: map[jose.HeaderKey]any{"kid": "ec", "typ": "dpop+jwt"}},
		} {
			t.Run(name, func(t *testing.T) {
				opts := &jose.SignerOptions{ExtraHeaders: hdr.ExtraHeaders}
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: ecKey}, opts)
				if err != nil {
					t.Fatal(err)
				}
				a, err := jwt.Signed(signer).Claims(f.claims(clientID)).Serialize()
				if err != nil {
					t.Fatal(err)
				}
				r := f.postToken(tokenForm(a, "system/*.rs"))
				wantOAuthError(t, r, 401, "invalid_client")
				if !strings.Contains(r.Description, map[string]string{"noKid": "kid", "jku": "jku", "crit": "crit", "jwk": "own key", "typ": "typ"}[name]) {
					t.Errorf("refused for %q", r.Description)
				}
			})
		}
	})
	t.Run("ErrUnknownKid", func(t *testing.T) {
		f := newFixture(t)
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "other", f.claims(clientID)), "system/*.rs")), 401, "invalid_client")
		// The kid of an RSA key on an ES384 assertion: kid and kty must match.
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "rsa", f.claims(clientID)), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrTwoKeysMatch", func(t *testing.T) {
		f := newFixture(t)
		var set jose.JSONWebKeySet
		for _, k := range []crypto.Signer{rsaKey, rsaKey2} {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: "dup", Use: "sig"})
		}
		b, _ := json.Marshal(set)
		f.addClient(dtm.Client{ID: "dup-client", JWKS: string(b), Practices: []string{practiceA}})
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "dup", f.claims("dup-client")), "system/*.rs")), 401, "invalid_client")
		// The same keys with distinct kids work.
		set.Keys[1].KeyID = "other"
		b, _ = json.Marshal(set)
		f.addClient(dtm.Client{ID: "ok-client", JWKS: string(b), Practices: []string{practiceA}})
		if r := f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "dup", f.claims("ok-client")), "system/*.rs")); r.Status != 200 {
			t.Fatalf("distinct kids: %d %s", r.Status, r.Description)
		}
	})
	t.Run("ErrKeyAlgMismatch", func(t *testing.T) {
		f := newFixture(t)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: rsaKey.Public(), KeyID: "k", Use: "sig", Algorithm: "RS512"}}}
		b, _ := json.Marshal(set)
		f.addClient(dtm.Client{ID: "alg-client", JWKS: string(b), Practices: []string{practiceA}})
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.RS384, rsaKey, "k", f.claims("alg-client")), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrDisabled", func(t *testing.T) {
		f := newFixture(t)
		c, _ := f.store.Client(context.Background(), clientID)
		c.Disabled = true
		f.store.UpdateClient(context.Background(), c)
		wantOAuthError(t, f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")), 401, "invalid_client")
	})
	t.Run("ErrClientIDMismatch", func(t *testing.T) {
		f := newFixture(t)
		form := tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(clientID)), "system/*.rs")
		form.Set("client_id", ingestID)
		wantOAuthError(t, f.postToken(form), 401, "invalid_client")
	})
	t.Run("ErrScope", func(t *testing.T) {
		f := newFixture(t)
		for _, tc := range []struct{ client, scope string }{
			{clientID, ""},
			{clientID, "system/*.write"},
			{clientID, "system/*.cruds"},
			{clientID, "system/*.*"},
			{clientID, "patient/*.rs"},
			{clientID, "user/*.rs"},
			{clientID, "system/Patient.rs?identifier=x"},
			{clientID, "system/patient.rs"},
			{clientID, "openid"},
			{clientID, auth.ScopeIngest},
			{clientID, "system/*.rs " + auth.ScopeIngest},
			{ingestID, "system/*.rs"},
		} {
			r := f.postToken(tokenForm(sign(t, jose.ES384, ecKey, "ec", f.claims(tc.client)), tc.scope))
			if r.Status != 400 || r.Error != "invalid_scope" {
				t.Errorf("%s %q: %d %s", tc.client, tc.scope, r.Status, r.Error)
			}
		}
	})
}

// wantAlgRefused checks that an assertion was refused for its algorithm,
// by our header check (before any key is looked up).
func wantAlgRefused(t *testing.T, r oauthResult) {
	t.Helper()
	wantOAuthError(t, r, 401, "invalid_client")
	if !strings.Contains(r.Description, "alg must be one of RS384, ES384, RS512") {
		t.Fatalf("refused for %q, not for its alg", r.Description)
	}
}

func mustEC256(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
