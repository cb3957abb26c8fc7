package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// FreezeState is the source's ingest state of a practice and its final
// watermark: once frozen, the source accepts no more changes, so the DTM
// is complete as of these instants.
type FreezeState struct {
	Practice string
	Frozen   bool
	// Watermark is the source system's "complete as of" time and
	// LastUpdated the last commit that changed the practice.
	Watermark   time.Time
	LastUpdated time.Time
	// TransactionTime is the source's latest snapshot: an export started
	// now reports it, and after a freeze no change follows it.
	TransactionTime time.Time
}

// Freezer freezes and unfreezes ingest for a practice at the source
// (dtm.Practices.SetFrozen there). Every method is idempotent.
type Freezer interface {
	// Freeze stops ingest for the practice and returns its final state.
	Freeze(ctx context.Context, practice string) (FreezeState, error)
	// Unfreeze resumes ingest (rollback).
	Unfreeze(ctx context.Context, practice string) (FreezeState, error)
	// State reads the practice's state without changing it (rehearsals).
	State(ctx context.Context, practice string) (FreezeState, error)
}

// Authorizer supplies bearer tokens; target.Authorizer (SMART Backend
// Services) is one.
type Authorizer interface {
	Token(ctx context.Context) (string, error)
}

// HTTPFreezer calls the source control plane: POST
// /dtm/v1/practices/{ods}/freeze and /unfreeze, GET .../status. The source
// allows it to admin principals only.
type HTTPFreezer struct {
	Source string       // the source's base URL
	HTTP   *http.Client // http.DefaultClient when nil
	Auth   Authorizer   // nil sends no Authorization header (--auth none)
}

// Freeze implements Freezer.
func (h *HTTPFreezer) Freeze(ctx context.Context, practice string) (FreezeState, error) {
	return h.call(ctx, http.MethodPost, practice, "freeze")
}

// Unfreeze implements Freezer.
func (h *HTTPFreezer) Unfreeze(ctx context.Context, practice string) (FreezeState, error) {
	return h.call(ctx, http.MethodPost, practice, "unfreeze")
}

// State implements Freezer.
func (h *HTTPFreezer) State(ctx context.Context, practice string) (FreezeState, error) {
	return h.call(ctx, http.MethodGet, practice, "status")
}

// statusJSON is the part of the source's practice status a freeze needs.
type statusJSON struct {
	Practice        string `json:"practice"`
	Frozen          bool   `json:"frozen"`
	LastUpdated     string `json:"lastUpdated"`
	SourceWatermark string `json:"sourceWatermark"`
	TransactionTime string `json:"transactionTime"`
}

func (h *HTTPFreezer) call(ctx context.Context, method, practice, op string) (FreezeState, error) {
	if !dtm.ValidODS(practice) {
		return FreezeState{}, dtm.Errorf(dtm.EInvalid, "%s: invalid ODS code", op)
	}
	u := strings.TrimRight(h.Source, "/") + "/dtm/v1/practices/" + url.PathEscape(practice) + "/" + op
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return FreezeState{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if h.Auth != nil {
		tok, err := h.Auth.Token(ctx)
		if err != nil {
			return FreezeState{}, fmt.Errorf("%s: token: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	c := h.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return FreezeState{}, dtm.Errorf(dtm.EUnavailable, "%s: source unreachable: %v", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return FreezeState{}, dtm.Errorf(dtm.EUnavailable, "%s: reading the source's answer: %v", op, err)
	}
	if resp.StatusCode/100 != 2 {
		code := dtm.EUnavailable
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			code = dtm.EUnauthorized
		case http.StatusForbidden:
			code = dtm.EForbidden
		case http.StatusNotFound:
			code = dtm.ENotFound
		}
		return FreezeState{}, dtm.Errorf(code, "%s: the source answered %s", op, resp.Status)
	}
	var sj statusJSON
	if err := json.Unmarshal(body, &sj); err != nil {
		return FreezeState{}, dtm.Errorf(dtm.EUnavailable, "%s: the source's answer is not status JSON", op)
	}
	st := FreezeState{Practice: practice, Frozen: sj.Frozen}
	for _, f := range []struct {
		dst *time.Time
		s   string
	}{{&st.Watermark, sj.SourceWatermark}, {&st.LastUpdated, sj.LastUpdated}, {&st.TransactionTime, sj.TransactionTime}} {
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.s)
		if err != nil {
			return FreezeState{}, dtm.Errorf(dtm.EUnavailable, "%s: bad instant %q in the source's answer", op, f.s)
		}
		*f.dst = t.UTC()
	}
	return st, nil
}

// StoreFreezer freezes a practice directly in a source store the caller
// has opened: for test environments where source and target run on one
// machine.
type StoreFreezer struct {
	Store dtm.Store
}

// Freeze implements Freezer.
func (s StoreFreezer) Freeze(ctx context.Context, practice string) (FreezeState, error) {
	if err := s.Store.SetFrozen(ctx, practice, true); err != nil {
		return FreezeState{}, fmt.Errorf("freeze: %w", err)
	}
	return s.State(ctx, practice)
}

// Unfreeze implements Freezer.
func (s StoreFreezer) Unfreeze(ctx context.Context, practice string) (FreezeState, error) {
	if err := s.Store.SetFrozen(ctx, practice, false); err != nil {
		return FreezeState{}, fmt.Errorf("unfreeze: %w", err)
	}
	return s.State(ctx, practice)
}

// State implements Freezer.
func (s StoreFreezer) State(ctx context.Context, practice string) (FreezeState, error) {
	p, err := s.Store.Practice(ctx, practice)
	if err != nil {
		return FreezeState{}, fmt.Errorf("freeze state: %w", err)
	}
	head, err := s.Store.Head(ctx)
	if err != nil {
		return FreezeState{}, fmt.Errorf("freeze state: %w", err)
	}
	return FreezeState{Practice: practice, Frozen: p.Frozen, Watermark: p.Watermark, LastUpdated: p.LastUpdated,
		TransactionTime: head.Time}, nil
}
