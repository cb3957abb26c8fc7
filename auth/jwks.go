package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/go-jose/go-jose/v4"
)

// Limits of key handling.
const (
	maxJWKSBytes  = 256 << 10
	minRSABits    = 2048
	minKIDRefresh = 10 * time.Second // a JWKS URL is refetched for an unknown kid at most this often
)

// keySource finds the public key that verifies a client's assertion: from
// the client's inline JWKS, or from its registered JWKS URL, fetched with a
// timeout, cached, and fetched again (at most once per assertion and once
// per minKIDRefresh) when the kid is unknown. It is safe for concurrent use.
type keySource struct {
	client  *http.Client
	timeout time.Duration
	ttl     time.Duration
	clock   dtm.Clock
	logger  *slog.Logger

	mu    sync.Mutex
	cache map[string]*cachedSet // by URL
}

// cachedSet is one fetched JWKS. Its mutex is held while it is fetched, so
// concurrent assertions of one client cause one fetch.
type cachedSet struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // zero: never fetched successfully
}

func newKeySource(hc *http.Client, timeout, ttl time.Duration, clock dtm.Clock, logger *slog.Logger) *keySource {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &keySource{client: c, timeout: timeout, ttl: ttl, clock: clock, logger: logger, cache: map[string]*cachedSet{}}
}

// key returns the single registered key of client that matches the header's
// kid and the key type of its alg. It returns an invalid_client error when
// none or more than one matches, the matching key does not suit the alg, or
// the header names a jku other than the registered JWKS URL.
func (k *keySource) key(ctx context.Context, c dtm.Client, h assertionHeader) (jose.JSONWebKey, error) {
	if h.Jku != "" && h.Jku != c.JWKSURL {
		return jose.JSONWebKey{}, badClient("client_assertion jku is not the client's registered JWKS URL")
	}
	switch {
	case c.JWKS != "":
		keys, err := ParseJWKS([]byte(c.JWKS))
		if err != nil {
			return jose.JSONWebKey{}, badClient("the client's registered JWKS is invalid")
		}
		return selectKey(keys, h)
	case c.JWKSURL != "":
		keys, err := k.fetch(ctx, c.JWKSURL, false)
		if err != nil {
			return jose.JSONWebKey{}, err
		}
		key, err := selectKey(keys, h)
		if !errors.Is(err, errNoKey) {
			return key, err
		}
		keys, err = k.fetch(ctx, c.JWKSURL, true)
		if err != nil {
			return jose.JSONWebKey{}, err
		}
		return selectKey(keys, h)
	}
	return jose.JSONWebKey{}, badClient("the client has no registered keys")
}

// errNoKey is the error of selectKey when no key has the kid.
var errNoKey = badClient("no registered key has the client_assertion kid")

// selectKey returns the one key with the header's kid and the key type of
// its alg, checking that the key suits the alg (curve P-384 for ES384, RSA of
// at least 2048 bits, use "sig" and the same alg when given). It returns
// errNoKey when no key matches.
func selectKey(keys []jose.JSONWebKey, h assertionHeader) (jose.JSONWebKey, error) {
	var match []jose.JSONWebKey
	for _, key := range keys {
		if key.KeyID == h.Kid && keyType(key) == algKeyType(h.Alg) {
			match = append(match, key)
		}
	}
	switch len(match) {
	case 0:
		return jose.JSONWebKey{}, errNoKey
	case 1:
	default:
		return jose.JSONWebKey{}, badClient("more than one registered key has the client_assertion kid and key type")
	}
	key := match[0]
	if key.Use != "" && key.Use != "sig" {
		return key, badClient("the registered key with this kid is not a signing key")
	}
	if key.Algorithm != "" && key.Algorithm != h.Alg {
		return key, badClient("the registered key with this kid is for %s, not %s", key.Algorithm, h.Alg)
	}
	if pub, ok := key.Key.(*ecdsa.PublicKey); ok && pub.Curve != elliptic.P384() {
		return key, badClient("ES384 needs a P-384 key")
	}
	return key, nil
}

// keyType returns "RSA" or "EC" for a public key, "" for anything else.
func keyType(k jose.JSONWebKey) string {
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	}
	return ""
}

func algKeyType(alg string) string {
	if alg == ES384 {
		return "EC"
	}
	return "RSA"
}

// ParseJWKS parses a JWK Set and returns its usable public keys: RSA keys of
// at least 2048 bits and EC keys. Keys of other types, and keys it cannot
// parse, are skipped, as SMART asks of servers. It returns an error if data
// is not a JWK Set, or if a key contains private material (a JWKS to
// register holds public keys only).
func ParseJWKS(data []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("parse jwks: no \"keys\" array")
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return nil, errors.New("parse jwks: a key contains private material; register public keys only")
		}
		if keyType(key) == "" {
			continue // symmetric and other key types are never used
		}
		if pub, ok := key.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// fetch returns the keys at url, from the cache while it is fresh. With
// refresh it fetches again unless the cache is younger than minKIDRefresh.
// It returns an invalid_client error when the JWKS cannot be fetched.
func (k *keySource) fetch(ctx context.Context, rawURL string, refresh bool) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	cs := k.cache[rawURL]
	if cs == nil {
		cs = &cachedSet{}
		k.cache[rawURL] = cs
	}
	k.mu.Unlock()

	cs.mu.Lock()
	defer cs.mu.Unlock()
	now := k.clock.Now()
	age := now.Sub(cs.fetched)
	if !cs.fetched.IsZero() && age < k.ttl && (!refresh || age < minKIDRefresh) {
		return cs.keys, nil
	}
	keys, err := k.get(ctx, rawURL)
	if err != nil {
		k.logger.Warn("fetch client jwks", "url", rawURL, "err", err)
		return nil, badClient("the client's JWKS URL could not be fetched")
	}
	cs.keys, cs.fetched = keys, now
	return keys, nil
}

// get fetches and parses the JWKS at rawURL, which must be https, within
// k.timeout, without following redirects.
func (k *keySource) get(ctx context.Context, rawURL string) ([]jose.JSONWebKey, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("jwks url must be https")
	}
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks larger than %d bytes", maxJWKSBytes)
	}
	return ParseJWKS(b)
}
