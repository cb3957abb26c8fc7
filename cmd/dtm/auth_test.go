package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/sqlite"
)

// runDTM runs the dtm command line and returns its exit code and output.
func runDTM(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), append(args, "--log-level", "error"), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runDTM(t, args...)
	if code != 0 {
		t.Fatalf("dtm %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// TestAuthCommands registers a target with the CLI and obtains a token with
// "dtm auth token" from an authorisation server on the same store.
func TestAuthCommands(t *testing.T) {
	dir := t.TempDir()
	key, jwks := filepath.Join(dir, "key.pem"), filepath.Join(dir, "jwks.json")
	dbPath := filepath.Join(dir, "s.db")
	db := "sqlite:" + dbPath

	out := mustRun(t, "auth", "keygen", "--alg", "ES384", "--out", key, "--jwks", jwks)
	if !strings.Contains(out, "kid ") {
		t.Errorf("keygen output %q", out)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if code, _, _ := runDTM(t, "auth", "keygen", "--out", key, "--jwks", jwks+"2"); code == 0 {
		t.Error("keygen overwrote an existing key")
	}
	if code, _, _ := runDTM(t, "auth", "keygen", "--alg", "HS256", "--out", key+"2", "--jwks", jwks+"2"); code != exitUsage {
		t.Errorf("keygen --alg HS256: exit %d, want %d", code, exitUsage)
	}

	// Registration: bad input is a usage error.
	for _, args := range [][]string{
		{"tss-b", "--practice", "A81001"},                                              // no keys
		{"tss-b", "--jwks", jwks},                                                      // no practice
		{"tss-b", "--jwks", jwks, "--practice", "a81001"},                              // bad ODS
		{"tss-b", "--jwks", key, "--practice", "A81001"},                               // a private key file
		{"tss-b", "--jwks-url", "http://x/jwks", "--practice", "A81001"},               // not https
		{"tss-b", "--jwks", jwks, "--practice", "A81001", "--retrievals-per-24h", "3"}, // no agreed-by
		{"bad id!", "--jwks", jwks, "--practice", "A81001"},
	} {
		if code, _, errOut := runDTM(t, append([]string{"source", "clients", "add", "--db", db}, args...)...); code == 0 {
			t.Errorf("clients add %v succeeded", args)
		} else if strings.Contains(errOut, "BEGIN") {
			t.Errorf("key material in an error: %s", errOut)
		}
	}
	mustRun(t, "source", "clients", "add", "--db", db, "tss-b", "--name", "Target B", "--jwks", jwks,
		"--practice", "A81001", "--retrievals-per-24h", "2", "--agreed-by", "J Smith", "--agreed-at", "2026-03-01")
	if code, _, _ := runDTM(t, "source", "clients", "add", "--db", db, "tss-b", "--jwks", jwks, "--practice", "A81001"); code == 0 {
		t.Error("a client registered twice")
	}
	out = mustRun(t, "source", "clients", "list", "--db", db)
	if !strings.Contains(out, "tss-b") || !strings.Contains(out, "2 per 24 h, agreed by J Smith on 2026-03-01") {
		t.Errorf("list:\n%s", out)
	}
	out = mustRun(t, "source", "clients", "show", "--db", db, "tss-b")
	if !strings.Contains(out, "ES384") || !strings.Contains(out, "NOT MET") {
		t.Errorf("show:\n%s", out)
	}

	// A source authorisation server on the same store.
	st, err := sqlite.Open(context.Background(), dbPath, sqlite.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var srv *auth.Server
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Middleware(srv.Handler()).ServeHTTP(w, r)
	}))
	defer hs.Close()
	srv, err = auth.New(auth.Config{Store: st, TokenURL: hs.URL + auth.PathToken, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(mustRun(t, "auth", "token", "--source", hs.URL, "--client-id", "tss-b", "--key", key))
	p, err := srv.Authenticate(context.Background(), "Bearer "+tok)
	if err != nil || p.Client != "tss-b" || !p.CanRead("A81001") {
		t.Fatalf("token from dtm auth token: %+v, %v", p, err)
	}

	// Updating the client revokes its tokens; disabling refuses new ones.
	out = mustRun(t, "source", "clients", "update", "--db", db, "tss-b", "--practice", "A81001", "--practice", "A81002")
	if !strings.Contains(out, "1 access tokens revoked") {
		t.Errorf("update: %s", out)
	}
	if _, err := srv.Authenticate(context.Background(), "Bearer "+tok); dtm.ErrorCode(err) != dtm.EUnauthorized {
		t.Errorf("token after update: %v", err)
	}
	mustRun(t, "source", "clients", "update", "--db", db, "tss-b", "--disable")
	if code, _, errOut := runDTM(t, "auth", "token", "--source", hs.URL, "--client-id", "tss-b", "--key", key); code == 0 ||
		!strings.Contains(errOut, "invalid_client") {
		t.Errorf("token for a disabled client: exit %d: %s", code, errOut)
	}

	out = mustRun(t, "source", "audit", "--db", db)
	for _, want := range []string{"client tss-b added", "client tss-b updated", "token", "denied"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, tok) {
		t.Fatal("an access token is in the audit log")
	}
	out = mustRun(t, "source", "audit", "--db", db, "--action", "admin", "--format", "fhir")
	if n := strings.Count(out, `"resourceType":"AuditEvent"`); n != 3 {
		t.Errorf("%d admin AuditEvents, want 3:\n%s", n, out)
	}
	mustRun(t, "source", "clients", "remove", "--db", db, "tss-b")
	if code, _, _ := runDTM(t, "source", "clients", "show", "--db", db, "tss-b"); code == 0 {
		t.Error("a removed client is shown")
	}
}

func TestAuthCert(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	mustRun(t, "auth", "cert", "--out-cert", cert, "--out-key", key, "--host", "127.0.0.1")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	if _, err := auth.ServerTLSConfig(cert, key, ""); err != nil {
		t.Fatal(err)
	}
}
