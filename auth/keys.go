package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/go-jose/go-jose/v4"
)

// RSAKeyBits is the size of RSA keys made by GenerateKey.
const RSAKeyBits = 3072

// GenerateKey makes a new private key for alg: a P-384 ECDSA key for ES384,
// a RSAKeyBits RSA key for RS384 and RS512. It reads randomness from random
// (crypto/rand.Reader when nil). It returns an error for any other alg.
func GenerateKey(alg string, random io.Reader) (crypto.Signer, error) {
	if random == nil {
		random = rand.Reader
	}
	switch alg {
	case ES384:
		return ecdsa.GenerateKey(elliptic.P384(), random)
	case RS384, RS512:
		return rsa.GenerateKey(random, RSAKeyBits)
	}
	return nil, fmt.Errorf("generate key: algorithm %q is not one of %v", alg, Algorithms())
}

// signingAlg returns the JOSE algorithm for signing with key: alg when given
// (checked against the key type), else ES384 for EC and RS384 for RSA keys.
func signingAlg(key crypto.Signer, alg string) (jose.SignatureAlgorithm, error) {
	if key == nil {
		return "", errors.New("assertion: no private key")
	}
	var kt string
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P384() {
			return "", errors.New("assertion: EC keys must be P-384 (ES384)")
		}
		kt = "EC"
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return "", fmt.Errorf("assertion: RSA keys must have at least %d bits", minRSABits)
		}
		kt = "RSA"
	default:
		return "", fmt.Errorf("assertion: unsupported key type %T", pub)
	}
	if alg == "" {
		alg = map[string]string{"EC": ES384, "RSA": RS384}[kt]
	}
	if algKeyType(alg) != kt || (alg != ES384 && alg != RS384 && alg != RS512) {
		return "", fmt.Errorf("assertion: algorithm %q does not suit a %s key", alg, kt)
	}
	return jose.SignatureAlgorithm(alg), nil
}

// MarshalPrivateKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes the first PEM block of data: PKCS#8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY").
// It returns an error if there is no such block or the key is neither ECDSA
// nor RSA.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("parse private key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("parse private key: unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("parse private key: unsupported key type %T", key)
}

// Thumbprint returns the RFC 7638 SHA-256 JWK thumbprint of key's public
// half, base64url without padding: the kid dtm uses for its keys.
func Thumbprint(key crypto.Signer) (string, error) {
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// PublicJWKS returns the JWK Set JSON holding key's public half, with
// kid = Thumbprint(key), use "sig" and alg (or the key's default alg when
// empty): what a target registers at the source, inline or at its JWKS URL.
func PublicJWKS(key crypto.Signer, alg string) ([]byte, error) {
	a, err := signingAlg(key, alg)
	if err != nil {
		return nil, err
	}
	kid, err := Thumbprint(key)
	if err != nil {
		return nil, err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: key.Public(), KeyID: kid, Use: "sig", Algorithm: string(a),
	}}}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal jwks: %w", err)
	}
	return append(b, '\n'), nil
}
