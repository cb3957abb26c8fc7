package target_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
	"github.com/dtm-project/dtm/sqlite"
)

// TestPuller_SMART pulls from a source that requires SMART Backend
// Services tokens (manifests say requiresAccessToken), with
// auth.ClientCredentials as the Authorizer.
func TestPuller_SMART(t *testing.T) {
	t.Parallel()
	key, err := auth.GenerateKey(auth.ES384, nil)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.PublicJWKS(key, auth.ES384)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := auth.Thumbprint(key)
	if err != nil {
		t.Fatal(err)
	}
	var tokenURL string
	src := startSourceAuth(t, 2, func(db *sqlite.DB, u string) *auth.Server {
		tokenURL = u
		_, err := db.CreateClient(context.Background(), dtm.Client{ID: "tss-b", Name: "Target supplier", JWKS: string(jwks),
			Practices: []string{testODS}, AgreedRetrievalsPer24h: 100, AgreedBy: "test"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := auth.New(auth.Config{Store: db, TokenURL: u, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
	t.Run("OK", func(t *testing.T) {
		tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
		creds := &auth.ClientCredentials{TokenURL: tokenURL, ClientID: "tss-b", Key: key, KeyID: kid}
		res, err := pullerAuth(t, src.url, tgt, t.TempDir(), false, creds).Pull(t.Context(), testODS)
		if err != nil {
			t.Fatal(err)
		}
		if res.SourceFreshness == "" {
			t.Fatalf("the status endpoint was not read with the token: %+v", res.PullRecord)
		}
		assertMigrated(t, src.db, tgt)
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		tgt := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
		_, err := pullerFor(t, src.url, tgt, t.TempDir(), false).Pull(t.Context(), testODS)
		if dtm.ErrorCode(err) != dtm.EUnauthorized {
			t.Fatalf("err = %v, want unauthorized", err)
		}
	})
}
