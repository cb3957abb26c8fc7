package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/sqlite"
)

// smartSource is a source served with SMART auth over a real SQLite store,
// with practices A81001 and B82002 and one registered target client that
// may read only A81001.
type smartSource struct {
	url   string
	store *sqlite.DB
	creds *auth.ClientCredentials
}

func startSmartSource(t *testing.T) *smartSource {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, ods := range []string{"A81001", "B82002"} {
		if _, err := st.CreatePractice(ctx, dtm.Practice{ODS: ods, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		w := dtm.Write{Type: "Patient", ID: "p-" + ods, Op: dtm.OpUpsert, JSON: []byte(`{"resourceType":"Patient","id":"p-` + ods + `"}`), Patient: "p-" + ods, Member: true}
		if _, err := st.Apply(ctx, ods, []dtm.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := auth.GenerateKey(auth.ES384, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.PublicJWKS(key, auth.ES384)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"target-1", "target-patients-only"} {
		if _, err := st.CreateClient(ctx, dtm.Client{ID: id, Name: "Target supplier", JWKS: string(jwks), Practices: []string{"A81001"},
			AgreedRetrievalsPer24h: 2, AgreedBy: "test", AgreedAt: time.Now(), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewUnstartedServer(nil)
	url := "http://" + hs.Listener.Addr().String()
	srv, err := newSourceServer(st, dtm.SystemClock{}, slog.New(slog.DiscardHandler), url, true)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.run(runCtx) }()
	hs.Config.Handler = srv.handler
	hs.Start()
	t.Cleanup(func() { hs.Close(); cancel(); <-done })
	kid, _ := auth.Thumbprint(key)
	creds := &auth.ClientCredentials{TokenURL: url + auth.PathToken, ClientID: "target-1", Key: key, KeyID: kid}
	return &smartSource{url: url, store: st, creds: creds}
}

// call makes a request with the given bearer token ("" for none) and
// returns the response with its body read.
func call(t *testing.T, method, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Accept", "application/fhir+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestSourceServe_SMART(t *testing.T) {
	s := startSmartSource(t)
	kickoff := s.url + "/fhir/Group/A81001/$export"
	if resp, body := call(t, "GET", kickoff, ""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "OperationOutcome") {
		t.Fatalf("kick-off without a token: %d %s, want 401 with an OperationOutcome", resp.StatusCode, body)
	}
	token, err := s.creds.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, "POST", s.url+"/dtm/v1/practices/A81001/ingest", token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ingest with a target's read token: %d, want 403", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", s.url+"/dtm/v1/practices/B82002/status", token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("status of a practice not registered to the client: %d, want 403", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", s.url+"/fhir/Group/B82002/$export", token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("kick-off for a practice not registered to the client: %d, want 403", resp.StatusCode)
	}
	resp, body := call(t, "GET", kickoff, token)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("kick-off: %d %s", resp.StatusCode, body)
	}
	status := resp.Header.Get("Content-Location")
	var manifest struct {
		RequiresAccessToken bool                   `json:"requiresAccessToken"`
		Output              []struct{ URL string } `json:"output"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, body = call(t, "GET", status, token)
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export not complete: %d %s", resp.StatusCode, body)
		}
	}
	if err := json.Unmarshal(body, &manifest); err != nil || !manifest.RequiresAccessToken || len(manifest.Output) == 0 {
		t.Fatalf("manifest %s (err %v): want requiresAccessToken and output", body, err)
	}
	if resp, _ := call(t, "GET", manifest.Output[0].URL, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("file download without a token: %d, want 401", resp.StatusCode)
	}
	if resp, body := call(t, "GET", manifest.Output[0].URL, token); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"p-A81001"`) || strings.Contains(string(body), "B82002") {
		t.Errorf("file download: %d %s, want only A81001's patient", resp.StatusCode, body)
	}
	// The agreement is two retrievals per practice per 24 hours (S7).
	if resp, body := call(t, "GET", kickoff, token); resp.StatusCode != http.StatusAccepted {
		t.Errorf("second kick-off within 24 h: %d %s; want 202 (agreed)", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", kickoff, token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "agreed by test") {
		t.Errorf("third kick-off within 24 h: %d Retry-After %q %s; want 429 naming the agreement", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	events, err := s.store.AuditEvents(context.Background(), dtm.AuditQuery{Client: "target-1"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Action+"/"+e.Outcome] = true
	}
	for _, want := range []string{"token/success", "kickoff/success", "kickoff/denied", "status/success", "download/success"} {
		if !seen[want] {
			t.Errorf("audit log lacks a %s event; has %v", want, seen)
		}
	}
}

func TestSourceServe_PerTypeScopes(t *testing.T) {
	s := startSmartSource(t)
	creds := &auth.ClientCredentials{TokenURL: s.creds.TokenURL, ClientID: "target-patients-only", Key: s.creds.Key,
		KeyID: s.creds.KeyID, Scope: "system/Patient.rs"}
	token, err := creds.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := call(t, "GET", s.url+"/fhir/Group/A81001/$export?_type=Observation", token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("kick-off for a type outside the scopes: %d %s, want 403", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", s.url+"/fhir/Binary/x", token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("Binary read without a Binary scope: %d, want 403", resp.StatusCode)
	}
	resp, body := call(t, "GET", s.url+"/fhir/Group/A81001/$export", token)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("kick-off: %d %s", resp.StatusCode, body)
	}
	status := resp.Header.Get("Content-Location")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, body = call(t, "GET", status, token)
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	var m struct {
		Request string
		Output  []struct{ Type string }
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Output) == 0 {
		t.Fatalf("export under system/Patient.rs has no output: %s", body)
	}
	for _, o := range m.Output {
		if o.Type != "Patient" {
			t.Errorf("export under system/Patient.rs has a %s file", o.Type)
		}
	}
}
