package source

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dtm-project/dtm"
)

func TestHandler_FreezeRoutes(t *testing.T) {
	db := MustOpen(t)
	h := &Handler{Store: db, Ingester: &Ingester{Journal: db}, Clock: dtm.SystemClock{}}
	mux := http.NewServeMux()
	h.Routes(mux)
	h.FreezeRoutes(mux)
	do := func(t *testing.T, p dtm.Principal, path string) (*httptest.ResponseRecorder, Status) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req = req.WithContext(dtm.NewContextWithPrincipal(req.Context(), p))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var st Status
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatal(err)
			}
		}
		return rec, st
	}
	admin := dtm.Principal{Client: "ops", Practices: []string{dtm.AllPractices}, Admin: true}
	t.Run("ErrForbidden", func(t *testing.T) {
		// Clients registered for other practices only.
		for _, p := range []dtm.Principal{{Client: "tss", Practices: []string{"B82002"}}, {Client: "ingest", Ingest: true, Practices: []string{"B82002"}}} {
			if rec, _ := do(t, p, "/dtm/v1/practices/A81001/freeze"); rec.Code != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", p.Client, rec.Code)
			}
		}
	})
	t.Run("OK/TargetOfThePractice", func(t *testing.T) {
		tss := dtm.Principal{Client: "tss", Practices: []string{"A81001"}}
		if rec, st := do(t, tss, "/dtm/v1/practices/A81001/freeze"); rec.Code != http.StatusOK || !st.Frozen {
			t.Fatalf("freeze by the practice's target: %d frozen %v", rec.Code, st.Frozen)
		}
		if rec, st := do(t, tss, "/dtm/v1/practices/A81001/unfreeze"); rec.Code != http.StatusOK || st.Frozen {
			t.Fatalf("unfreeze by the practice's target: %d frozen %v", rec.Code, st.Frozen)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if rec, _ := do(t, admin, "/dtm/v1/practices/Z99999/freeze"); rec.Code != http.StatusNotFound {
			t.Errorf("status %d, want 404", rec.Code)
		}
	})
	t.Run("OK", func(t *testing.T) {
		for range 2 { // idempotent
			if rec, st := do(t, admin, "/dtm/v1/practices/A81001/freeze"); rec.Code != http.StatusOK || !st.Frozen {
				t.Fatalf("freeze: status %d, %+v", rec.Code, st)
			}
		}
		if _, err := db.Apply(t.Context(), "A81001", []dtm.Write{{Type: "Organization", ID: "o1", JSON: []byte(`{"resourceType":"Organization","id":"o1"}`)}}); dtm.ErrorCode(err) != dtm.EFrozen {
			t.Fatalf("apply while frozen: %v, want frozen", err)
		}
		if rec, st := do(t, admin, "/dtm/v1/practices/A81001/unfreeze"); rec.Code != http.StatusOK || st.Frozen {
			t.Fatalf("unfreeze: status %d, %+v", rec.Code, st)
		}
		p, err := db.Practice(t.Context(), "A81001")
		if err != nil || p.Frozen {
			t.Fatalf("practice = %+v, %v", p, err)
		}
	})
}
