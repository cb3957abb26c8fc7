package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"testing"
	"time"

	"github.com/dtm-project/dtm/auth"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestGenerateKey(t *testing.T) {
	t.Run("OKES384", func(t *testing.T) {
		key, err := auth.GenerateKey(auth.ES384, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := key.(*ecdsa.PrivateKey); !ok {
			t.Fatalf("%T", key)
		}
		roundTrip(t, key, auth.ES384)
	})
	t.Run("OKRS384", func(t *testing.T) {
		if testing.Short() {
			t.Skip("RSA key generation is slow")
		}
		key, err := auth.GenerateKey(auth.RS384, nil)
		if err != nil {
			t.Fatal(err)
		}
		if k, ok := key.(*rsa.PrivateKey); !ok || k.N.BitLen() != auth.RSAKeyBits {
			t.Fatalf("%T", key)
		}
		roundTrip(t, key, auth.RS384)
	})
	t.Run("ErrAlg", func(t *testing.T) {
		for _, alg := range []string{"HS256", "none", "RS256", "ES256", ""} {
			if _, err := auth.GenerateKey(alg, nil); err == nil {
				t.Errorf("GenerateKey(%q) succeeded", alg)
			}
		}
	})
}

// roundTrip checks that key survives PEM encoding, that its public JWKS has
// kid = thumbprint and no private material, and that an assertion signed
// with the decoded key verifies with the JWKS key.
func roundTrip(t *testing.T, key crypto.Signer, alg string) {
	t.Helper()
	pemKey, err := auth.MarshalPrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := auth.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
		t.Fatal("PEM round trip changed the key")
	}
	b, err := auth.PublicJWKS(back, alg)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Keys []map[string]any }
	json.Unmarshal(b, &raw)
	if _, ok := raw.Keys[0]["d"]; ok {
		t.Fatal("private key material in the public JWKS")
	}
	keys, err := auth.ParseJWKS(b)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%v, %v", keys, err)
	}
	kid, _ := auth.Thumbprint(key)
	if keys[0].KeyID != kid || keys[0].Algorithm != alg || keys[0].Use != "sig" {
		t.Errorf("jwk kid %s alg %s use %s; want kid %s", keys[0].KeyID, keys[0].Algorithm, keys[0].Use, kid)
	}
	c := auth.ClientCredentials{TokenURL: "https://dtm.example/auth/token", ClientID: "c", Key: back, KeyID: kid}
	a, err := c.Assertion(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(a, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("assertion does not verify with the JWKS key: %v", err)
	}
	if claims.Issuer != "c" || claims.Subject != "c" || claims.ID == "" || tok.Headers[0].KeyID != kid {
		t.Errorf("claims %+v", claims)
	}
}

// fixedSigner is a crypto.Signer with a given public key that cannot sign.
type fixedSigner struct{ pub crypto.PublicKey }

func (s fixedSigner) Public() crypto.PublicKey { return s.pub }
func (fixedSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	panic("not for signing")
}

// TestThumbprint checks the RFC 7638 section 3.1 example.
func TestThumbprint(t *testing.T) {
	n, _ := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := auth.Thumbprint(fixedSigner{pub})
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; err != nil || got != want {
		t.Errorf("Thumbprint = %q, %v; want %q", got, err, want)
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	for name, data := range map[string]string{
		"empty":  "",
		"cert":   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"broken": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		if _, err := auth.ParsePrivateKeyPEM([]byte(data)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
