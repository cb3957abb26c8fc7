package auth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
)

func TestClientCredentials_Token(t *testing.T) {
	const path = "/fhir/Group/" + practiceA + "/$export"
	newCreds := func(f *fixture) *auth.ClientCredentials {
		return &auth.ClientCredentials{TokenURL: f.tokenURL(), ClientID: clientID, Key: ecKey, KeyID: "ec", Clock: f.clock}
	}
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			name, kid, alg string
			rsa            bool
		}{{"ES384", "ec", "", false}, {"RS384", "rsa", "", true}, {"RS512", "rsa", auth.RS512, true}} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				c := newCreds(f)
				c.KeyID, c.Alg = tc.kid, tc.alg
				if tc.rsa {
					c.Key = rsaKey
				}
				tok, err := c.Token(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if resp := f.get(path, tok); resp.StatusCode != 200 {
					t.Fatalf("token does not work: %d", resp.StatusCode)
				}
			})
		}
	})
	t.Run("OKCachedAndRefreshed", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		ctx := context.Background()
		t1, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(4*time.Minute + 29*time.Second)
		if t2, _ := c.Token(ctx); t2 != t1 {
			t.Fatal("token replaced with more than 30 s left")
		}
		f.clock.Advance(time.Second) // 30 s left
		t3, err := c.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if t3 == t1 {
			t.Fatal("token not replaced 30 s before expiry")
		}
		// A pull that outlives one token keeps working: the old token
		// lapses, the new one is accepted.
		f.clock.Advance(31 * time.Second)
		if resp := f.get(path, t1); resp.StatusCode != 401 {
			t.Errorf("old token after expiry: %d", resp.StatusCode)
		}
		t4, _ := c.Token(ctx)
		if resp := f.get(path, t4); resp.StatusCode != 200 {
			t.Errorf("refreshed token: %d", resp.StatusCode)
		}
		events, _ := f.store.AuditEvents(ctx, dtm.AuditQuery{Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess})
		if len(events) != 2 {
			t.Errorf("%d token requests, want 2", len(events))
		}
	})
	t.Run("OKConcurrent", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		var wg sync.WaitGroup
		toks := make([]string, 8)
		for i := range toks {
			wg.Go(func() {
				var err error
				if toks[i], err = c.Token(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		for _, tok := range toks {
			if tok != toks[0] {
				t.Fatal("concurrent callers got different tokens")
			}
		}
	})
	t.Run("OKInvalidate", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		t1, _ := c.Token(context.Background())
		c.Invalidate("something else")
		if t2, _ := c.Token(context.Background()); t2 != t1 {
			t.Fatal("Invalidate of another token dropped the cached one")
		}
		c.Invalidate(t1)
		if t3, _ := c.Token(context.Background()); t3 == t1 {
			t.Fatal("Invalidate kept the token")
		}
	})
	t.Run("ErrRefused", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		c.KeyID = "unknown"
		_, err := c.Token(context.Background())
		if dtm.ErrorCode(err) != dtm.EUnauthorized {
			t.Fatalf("err %v, want EUnauthorized", err)
		}
	})
	t.Run("ErrContext", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := c.Token(ctx); err == nil {
			t.Fatal("no error with a cancelled context")
		}
	})
	t.Run("ErrKey", func(t *testing.T) {
		f := newFixture(t)
		c := newCreds(f)
		c.Alg = auth.RS384 // an EC key
		if _, err := c.Token(context.Background()); err == nil {
			t.Fatal("RS384 with an EC key")
		}
		c.Key, c.Alg = mustEC256(t), ""
		if _, err := c.Token(context.Background()); err == nil {
			t.Fatal("a P-256 key")
		}
	})
}

func TestDiscover(t *testing.T) {
	f := newFixture(t)
	for _, base := range []string{f.url, f.url + "/fhir", f.url + "/fhir/"} {
		sc, err := auth.Discover(context.Background(), nil, base)
		if err != nil || sc.TokenEndpoint != f.tokenURL() {
			t.Errorf("Discover(%s) = %+v, %v", base, sc, err)
		}
	}
	if _, err := auth.Discover(context.Background(), nil, f.url+"/nothing"); err == nil {
		t.Error("Discover of a base without a configuration")
	}
}
