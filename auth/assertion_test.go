package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TestAllowedAlgs checks the second line of defence: go-jose itself, given
// allowedAlgs, refuses every algorithm but RS384, ES384 and RS512, so that
// an HS256 token "signed" with the public key as the HMAC secret cannot be
// parsed even if our own header check were bypassed.
func TestAllowedAlgs(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	b64 := base64.RawURLEncoding.EncodeToString
	for _, alg := range []string{"HS256", "HS384", "HS512", "none", "RS256", "PS384", "ES256", "ES512", "EdDSA"} {
		input := b64([]byte(`{"alg":"`+alg+`","kid":"k"}`)) + "." + b64([]byte(`{"iss":"c"}`))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(input))
		if _, err := jwt.ParseSigned(input+"."+b64(m.Sum(nil)), allowedAlgs); err == nil {
			t.Errorf("go-jose accepted alg %s", alg)
		}
	}
	if len(allowedAlgs) != 3 {
		t.Errorf("allowedAlgs = %v", allowedAlgs)
	}
}
