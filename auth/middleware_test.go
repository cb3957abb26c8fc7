package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
)

// wantUnauthorized checks a 401 with a Bearer challenge and a FHIR
// OperationOutcome with issue code login.
func wantUnauthorized(t *testing.T, resp *http.Response, diagnostics string) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer ") {
		t.Errorf("WWW-Authenticate %q", ch)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&oo); err != nil {
		t.Fatal(err)
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Severity != "error" ||
		oo.Issue[0].Code != "login" || !strings.Contains(oo.Issue[0].Diagnostics, diagnostics) {
		t.Errorf("outcome %+v, want diagnostics containing %q", oo, diagnostics)
	}
}

func TestServer_Middleware(t *testing.T) {
	const path = "/fhir/Group/" + practiceA + "/$export"
	t.Run("ErrNoToken", func(t *testing.T) {
		f := newFixture(t)
		resp := f.get(path, "")
		wantUnauthorized(t, resp, "access token is required")
		if ch := resp.Header.Get("WWW-Authenticate"); strings.Contains(ch, "invalid_token") {
			t.Errorf("challenge %q for a request without credentials", ch)
		}
		events, _ := f.store.AuditEvents(context.Background(), dtm.AuditQuery{Action: dtm.AuditAccess})
		if len(events) != 1 || events[0].Outcome != dtm.OutcomeDenied {
			t.Errorf("audit %+v", events)
		}
	})
	t.Run("ErrBadHeader", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		for _, h := range []string{"Basic " + tok, "Bearer", "Bearer " + tok + "x", "Bearer " + strings.Repeat("A", 43), tok} {
			req, _ := http.NewRequest(http.MethodGet, f.url+path, nil)
			req.Header.Set("Authorization", h)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("Authorization %q: %d", h[:min(len(h), 12)], resp.StatusCode)
			}
		}
	})
	t.Run("OKSchemeCase", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		if _, err := f.server.Authenticate(context.Background(), "bearer "+tok); err != nil {
			t.Error(err)
		}
	})
	t.Run("ErrWrongPractice", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		if resp := f.get("/fhir/Group/"+practiceB+"/$export", tok); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("another practice: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		f.clock.Advance(5*time.Minute - time.Second)
		if resp := f.get(path, tok); resp.StatusCode != 200 {
			t.Fatalf("just before expiry: %d", resp.StatusCode)
		}
		f.clock.Advance(time.Second)
		wantUnauthorized(t, f.get(path, tok), "expired")
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		other := f.mustToken(clientID, "system/*.rs")
		if err := f.server.RevokeToken(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		wantUnauthorized(t, f.get(path, tok), "revoked")
		if resp := f.get(path, other); resp.StatusCode != 200 {
			t.Fatalf("another token: %d", resp.StatusCode)
		}
		if n, err := f.server.RevokeClient(context.Background(), clientID); err != nil || n != 1 {
			t.Fatalf("RevokeClient = %d, %v", n, err)
		}
		wantUnauthorized(t, f.get(path, other), "revoked")
	})
	t.Run("ErrDeletedClient", func(t *testing.T) {
		f := newFixture(t)
		tok := f.mustToken(clientID, "system/*.rs")
		f.store.DeleteClient(context.Background(), clientID)
		wantUnauthorized(t, f.get(path, tok), "invalid access token")
	})
	t.Run("OKPublic", func(t *testing.T) {
		f := newFixture(t)
		for _, p := range []string{"/fhir/metadata", auth.PathSmartConfig} {
			if resp := f.get(p, ""); resp.StatusCode != 200 {
				t.Errorf("%s: %d", p, resp.StatusCode)
			}
		}
	})
	t.Run("OKPublicConfigured", func(t *testing.T) {
		f := newFixture(t)
		s := f.newServer(auth.Config{PublicPaths: []string{"/open"}})
		h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := dtm.PrincipalFromContext(r.Context()); ok {
				t.Error("a public path got a principal")
			}
		}))
		f.setHandler(h)
		if resp := f.get("/open", ""); resp.StatusCode != 200 {
			t.Errorf("/open: %d", resp.StatusCode)
		}
		if resp := f.get("/fhir/metadata", ""); resp.StatusCode != 401 {
			t.Errorf("/fhir/metadata, not in the configured list: %d", resp.StatusCode)
		}
	})
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "127.0.0.2:0": true,
		":8080": false, "0.0.0.0:8080": false, "192.0.2.1:80": false, "example.com:443": false, "bad": false,
	} {
		if err := auth.CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}

func TestAllowAll(t *testing.T) {
	var got dtm.Principal
	h := auth.AllowAll(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = dtm.PrincipalFromContext(r.Context())
	}))
	req, _ := http.NewRequest(http.MethodGet, "/fhir/$export", nil)
	h.ServeHTTP(nil, req)
	if !got.CanRead("A81001") || !got.Ingest {
		t.Errorf("principal %+v", got)
	}
}

func TestServer_RunPrunes(t *testing.T) {
	f := newFixture(t)
	tok := f.mustToken(clientID, "system/*.rs")
	f.clock.Advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.server.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := f.store.Token(context.Background(), auth.HashToken(tok)); dtm.ErrorCode(err) == dtm.ENotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired token not pruned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v", err)
	}
}
