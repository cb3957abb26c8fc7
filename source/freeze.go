package source

import (
	"net/http"

	"github.com/dtm-project/dtm"
)

// FreezeRoutes registers the cutover freeze control plane on mux:
//
//	POST /dtm/v1/practices/{ods}/freeze    stop ingest for the practice
//	POST /dtm/v1/practices/{ods}/unfreeze  resume it (rollback)
//
// Both are idempotent and answer with the practice's Status: frozen, and
// the final watermark, last update and transactionTime that the target's
// final pull must cover. They are allowed to admins and to the clients
// registered for the practice — the target supplier drives the cutover
// runbook (DESIGN.md), and the freeze is what makes its final pull final;
// the source system's own ingest client may freeze too.
func (h *Handler) FreezeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/freeze", func(w http.ResponseWriter, r *http.Request) { h.setFrozen(w, r, true) })
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/unfreeze", func(w http.ResponseWriter, r *http.Request) { h.setFrozen(w, r, false) })
}

func (h *Handler) setFrozen(w http.ResponseWriter, r *http.Request, frozen bool) {
	ods := r.PathValue("ods")
	p := h.principal(r)
	if !p.Admin && !p.CanRead(ods) {
		h.fail(w, r, dtm.Errorf(dtm.EForbidden, "freezing practice %s needs a client registered for it", ods))
		return
	}
	if !dtm.ValidODS(ods) {
		h.fail(w, r, dtm.Errorf(dtm.EInvalid, "invalid ODS code"))
		return
	}
	if err := h.Store.SetFrozen(r.Context(), ods, frozen); err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := PracticeStatus(r.Context(), h.Store, ods, h.Clock.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if h.Logger != nil {
		h.Logger.Info("practice ingest frozen state changed", "practice", ods, "frozen", frozen, "client", p.Client,
			"watermark", st.SourceWatermark, "transaction_time", st.TransactionTime)
	}
	writeJSON(w, http.StatusOK, st)
}
