package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// MaxIngestBody bounds one HTTP ingest request body (after decompression
// the NDJSON line limit still applies).
const MaxIngestBody = 1 << 30

// Handler serves the source control plane under /dtm/v1/: practice
// registration, ingest, watermark and status. Callers are authorised from
// the dtm.Principal in the request context (set by the auth middleware); a
// request without one is refused.
type Handler struct {
	Store    dtm.Store
	Ingester *Ingester
	Clock    dtm.Clock
	Logger   *slog.Logger
}

// Routes registers the handler's routes on mux.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dtm/v1/practices", h.listPractices)
	mux.HandleFunc("POST /dtm/v1/practices", h.createPractice)
	mux.HandleFunc("GET /dtm/v1/practices/{ods}/status", h.status)
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/ingest", h.ingest)
	mux.HandleFunc("PUT /dtm/v1/practices/{ods}/watermark", h.watermark)
}

func (h *Handler) principal(r *http.Request) dtm.Principal {
	p, _ := dtm.PrincipalFromContext(r.Context())
	return p
}

// readable checks the caller may read the practice and that it exists.
func (h *Handler) readable(r *http.Request, ods string) error {
	if !h.principal(r).CanRead(ods) {
		return dtm.Errorf(dtm.EForbidden, "not authorised for practice %s", ods)
	}
	_, err := h.Store.Practice(r.Context(), ods)
	return err
}

func (h *Handler) listPractices(w http.ResponseWriter, r *http.Request) {
	all, err := h.Store.ListPractices(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := h.principal(r)
	out := []Status{}
	for _, pr := range all {
		if !p.CanRead(pr.ODS) {
			continue
		}
		st, err := PracticeStatus(r.Context(), h.Store, pr.ODS, h.Clock.Now())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createPractice(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ODS  string `json:"ods"`
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if p := h.principal(r); !p.Admin && !(p.Ingest && p.CanRead(req.ODS)) {
		h.fail(w, r, dtm.Errorf(dtm.EForbidden, "registering practice %s needs admin rights or the practice's ingest credentials", req.ODS))
		return
	}
	if !dtm.ValidODS(req.ODS) {
		h.fail(w, r, dtm.Errorf(dtm.EInvalid, "ods must be 3 to 10 upper-case letters and digits"))
		return
	}
	p, err := h.Store.CreatePractice(r.Context(), dtm.Practice{ODS: req.ODS, Name: req.Name, CreatedAt: h.Clock.Now()})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"ods": p.ODS, "name": p.Name})
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	if err := h.readable(r, ods); err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := PracticeStatus(r.Context(), h.Store, ods, h.Clock.Now())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// ingest takes NDJSON (application/fhir+ndjson, application/x-ndjson) or a
// Bundle/resource (application/fhir+json), optionally gzip-encoded. Retrying
// the same body is harmless: unchanged resources are skipped.
func (h *Handler) ingest(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	if p := h.principal(r); !p.Ingest || !p.CanRead(ods) {
		h.fail(w, r, dtm.Errorf(dtm.EForbidden, "ingest for practice %s needs the source system's ingest credentials for it", ods))
		return
	}
	if _, err := h.Store.Practice(r.Context(), ods); err != nil {
		h.fail(w, r, err)
		return
	}
	format := FormatJSON
	if strings.Contains(r.Header.Get("Content-Type"), "ndjson") {
		format = FormatNDJSON
	}
	body := http.MaxBytesReader(w, r.Body, MaxIngestBody)
	st, err := h.Ingester.Load(r.Context(), ods, "request", format, body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = dtm.Errorf(dtm.ETooLarge, "request body exceeds %d bytes", MaxIngestBody)
		}
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"read": st.Read, "applied": st.Applied, "skipped": st.Skipped,
		"transactionTime": instant(st.Snapshot.Time),
	})
}

func (h *Handler) watermark(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	if p := h.principal(r); !p.Ingest || !p.CanRead(ods) {
		h.fail(w, r, dtm.Errorf(dtm.EForbidden, "the watermark of practice %s needs the source system's ingest credentials for it", ods))
		return
	}
	var req struct {
		CompleteAsOf string `json:"completeAsOf"`
	}
	if err := decodeJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	t, err := time.Parse(time.RFC3339Nano, req.CompleteAsOf)
	if err != nil {
		h.fail(w, r, dtm.Errorf(dtm.EInvalid, "completeAsOf must be an instant with a time zone, e.g. 2026-11-25T17:00:00Z"))
		return
	}
	if t.After(h.Clock.Now().Add(time.Minute)) {
		h.fail(w, r, dtm.Errorf(dtm.EInvalid, "completeAsOf is in the future"))
		return
	}
	if err := h.Store.SetWatermark(r.Context(), ods, t); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail writes err as an OperationOutcome. Internal detail is logged, never
// sent.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *InputError
	if errors.As(err, &ie) && fhir.ErrorCode(err) == dtm.EInternal {
		err = dtm.Errorf(dtm.EInvalid, "%s", ie.Error())
	}
	status, outcome := fhir.ErrorOutcome(err)
	if status >= 500 && h.Logger != nil {
		h.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	w.Write(outcome)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeJSON reads a small JSON request body strictly.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return dtm.Errorf(dtm.EInvalid, "request body: %s", strings.TrimPrefix(fmt.Sprint(err), "json: "))
	}
	return nil
}
