package auth_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm/auth"
)

func TestSelfSignedCert(t *testing.T) {
	certPEM, keyPEM, err := auth.SelfSignedCert([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o644)
	os.WriteFile(keyFile, keyPEM, 0o600)
	cfg, err := auth.ServerTLSConfig(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = cfg
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("certificate does not parse")
	}
	client := func(maxVersion uint16) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}}}
	}
	resp, err := client(0).Get(srv.URL)
	if err != nil {
		t.Fatalf("TLS with the self-signed certificate: %v", err)
	}
	resp.Body.Close()
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("negotiated %x", resp.TLS.Version)
	}
	if _, err := client(tls.VersionTLS11).Get(srv.URL); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	if _, _, err := auth.SelfSignedCert(nil); err == nil {
		t.Error("a certificate for no hosts")
	}
}

func TestServerTLSConfig_MutualTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _ := auth.SelfSignedCert([]string{"127.0.0.1"})
	caPEM, _, _ := auth.SelfSignedCert([]string{"client-ca"})
	certFile, keyFile, caFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "ca.pem")
	os.WriteFile(certFile, certPEM, 0o644)
	os.WriteFile(keyFile, keyPEM, 0o600)
	os.WriteFile(caFile, caPEM, 0o644)
	cfg, err := auth.ServerTLSConfig(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Errorf("client auth %v", cfg.ClientAuth)
	}
	if _, err := auth.ServerTLSConfig(certFile, keyFile, certFile+".missing"); err == nil {
		t.Error("missing CA file accepted")
	}
}
