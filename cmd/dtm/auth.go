package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/dtm-project/dtm/auth"
	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newAuthCmd) }

func newAuthCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Keys, access tokens and TLS certificates for SMART Backend Services",
		Long: `The source authenticates targets with SMART Backend Services: a target signs a
short JWT with its private key and exchanges it at the source's token endpoint for
an access token of at most 5 minutes. See docs/SECURITY.md.`,
	}
	cmd.AddCommand(newAuthKeygenCmd(e), newAuthTokenCmd(e), newAuthCertCmd(e))
	return cmd
}

func newAuthKeygenCmd(e *env) *cobra.Command {
	var alg, out, jwksOut string
	cmd := &cobra.Command{
		Use:   "keygen --alg ES384|RS384|RS512 --out key.pem --jwks jwks.json",
		Short: "Make a target's key pair: a private key (PEM) and its public JWKS",
		Long: `Make a new private key (P-384 for ES384, 3072-bit RSA for RS384 and RS512),
write it as PKCS#8 PEM readable only by you (mode 0600), and write its public
half as a JWK Set whose kid is the key's RFC 7638 thumbprint. Give the JWKS to the
source supplier (dtm source clients add --jwks), or publish it at an https URL
(--jwks-url); keep the private key. Existing files are never overwritten.`,
		Example: `  dtm auth keygen --alg ES384 --out tss-key.pem --jwks tss-jwks.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := auth.GenerateKey(alg, nil)
			if err != nil {
				return usageError{err}
			}
			pemKey, err := auth.MarshalPrivateKeyPEM(key)
			if err != nil {
				return err
			}
			jwks, err := auth.PublicJWKS(key, alg)
			if err != nil {
				return err
			}
			kid, err := auth.Thumbprint(key)
			if err != nil {
				return err
			}
			if err := writeNewFile(out, pemKey, 0o600); err != nil {
				return err
			}
			if err := writeNewFile(jwksOut, jwks, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "private key %s (keep it secret)\npublic JWKS %s\nkid %s\n", out, jwksOut, kid)
			return nil
		},
	}
	cmd.Flags().StringVar(&alg, "alg", auth.ES384, "signing algorithm: ES384, RS384 or RS512")
	cmd.Flags().StringVar(&out, "out", "", "private key file to create (PEM, mode 0600)")
	cmd.Flags().StringVar(&jwksOut, "jwks", "", "public JWK Set file to create")
	cmd.MarkFlagRequired("out")
	cmd.MarkFlagRequired("jwks")
	return cmd
}

// writeNewFile creates path with data and mode perm; it refuses to replace an
// existing file.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: not overwriting it", path)
	} else if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func newAuthTokenCmd(e *env) *cobra.Command {
	var src, clientID, keyFile, kid, alg, scope, caFile string
	cmd := &cobra.Command{
		Use:   "token --source URL --client-id ID --key key.pem",
		Short: "Print an access token from a source (for scripts and curl)",
		Long: `Discover the source's token endpoint (URL/.well-known/smart-configuration), sign a
client assertion with the private key, and print the access token it grants on
stdout, alone on a line. The token lasts at most 5 minutes; request a new one
rather than storing it. The kid defaults to the key's RFC 7638 thumbprint, which is
what "dtm auth keygen" puts in the JWKS.`,
		Example: `  TOKEN=$(dtm auth token --source https://dtm.sss.example --client-id tss-b --key tss-key.pem)
  curl -H "Authorization: Bearer $TOKEN" https://dtm.sss.example/fhir/metadata`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			key, err := auth.ParsePrivateKeyPEM(b)
			if err != nil {
				return err
			}
			if kid == "" {
				if kid, err = auth.Thumbprint(key); err != nil {
					return err
				}
			}
			hc, err := httpClientWithCA(caFile)
			if err != nil {
				return err
			}
			sc, err := auth.Discover(ctx, hc, src)
			if err != nil {
				return err
			}
			creds := &auth.ClientCredentials{TokenURL: sc.TokenEndpoint, ClientID: clientID, Key: key, KeyID: kid,
				Alg: alg, Scope: scope, HTTPClient: hc}
			tok, err := creds.Token(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&src, "source", "", "the source's base URL (or its FHIR base URL)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "client id registered at the source")
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (PEM)")
	cmd.Flags().StringVar(&kid, "kid", "", "key id in the registered JWKS (default: the key's thumbprint)")
	cmd.Flags().StringVar(&alg, "alg", "", "ES384, RS384 or RS512 (default: ES384 for EC keys, RS384 for RSA keys)")
	cmd.Flags().StringVar(&scope, "scope", "system/*.rs", "scope to request")
	cmd.Flags().StringVar(&caFile, "ca-cert", "", "trust this CA certificate (PEM) too, e.g. a test environment's self-signed one")
	for _, f := range []string{"source", "client-id", "key"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

// httpClientWithCA returns an HTTP client for talking to a source, trusting
// the system roots plus the certificates in caFile when it is not empty.
func httpClientWithCA(caFile string) (*http.Client, error) {
	hc := &http.Client{Timeout: time.Minute}
	if caFile == "" {
		return hc, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca-cert %s: no certificates", caFile)
	}
	hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return hc, nil
}

func newAuthCertCmd(e *env) *cobra.Command {
	var certOut, keyOut string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "cert --out-cert cert.pem --out-key key.pem --host HOST...",
		Short: "Make a self-signed TLS certificate for a test environment",
		Long: `Make a self-signed P-256 certificate, valid for 90 days, for the given host names
and IP addresses, for "dtm source serve --tls-cert --tls-key" in a test
environment. Clients trust it with --ca-cert. Production uses a certificate from a
real CA. Existing files are never overwritten; the key file is mode 0600.`,
		Example: `  dtm auth cert --out-cert cert.pem --out-key key.pem --host localhost --host 127.0.0.1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			certPEM, keyPEM, err := auth.SelfSignedCert(hosts)
			if err != nil {
				return usageError{err}
			}
			if err := writeNewFile(keyOut, keyPEM, 0o600); err != nil {
				return err
			}
			if err := writeNewFile(certOut, certPEM, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "certificate %s, key %s, for %v\n", certOut, keyOut, hosts)
			return nil
		},
	}
	cmd.Flags().StringVar(&certOut, "out-cert", "", "certificate file to create (PEM)")
	cmd.Flags().StringVar(&keyOut, "out-key", "", "private key file to create (PEM, mode 0600)")
	cmd.Flags().StringSliceVar(&hosts, "host", []string{"localhost", "127.0.0.1"}, "host name or IP address (repeatable)")
	cmd.MarkFlagRequired("out-cert")
	cmd.MarkFlagRequired("out-key")
	return cmd
}
