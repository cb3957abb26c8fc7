package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// minGap is the least time between two updates on one stream, so that a
// burst of Notify calls costs one Provider call, not one per call.
const minGap = 200 * time.Millisecond

// writeTimeout bounds one event's write: a stalled browser is dropped.
const writeTimeout = 30 * time.Second

// update is one event of the stream: the page's changing parts as HTML
// fragments rendered by the same templates as the page.
type update struct {
	Generated    string    `json:"generated"`    // "Fri 23 Oct 2026, 17:00 BST"
	GeneratedISO string    `json:"generatedISO"` // RFC 3339
	Error        string    `json:"error,omitempty"`
	Nav          string    `json:"nav,omitempty"`
	NavHash      string    `json:"navHash,omitempty"`
	Sections     []section `json:"sections"`
}

// section is one practice's <section>, by element id, with the hash of
// its content (its data-hash attribute).
type section struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
	HTML string `json:"html"`
}

// serveEvents streams updates as server-sent events ("event: update",
// data: an update in JSON) until the client goes away or Close is called:
// one at once, then one every Interval and one after each Notify.
func (h *Handler) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.closed:
		w.WriteHeader(http.StatusNoContent) // tells EventSource not to reconnect
		return
	default:
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many dashboard streams", http.StatusServiceUnavailable)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	ctx := r.Context()
	ticker := time.NewTicker(h.interval)
	defer ticker.Stop()
	if err := h.send(rc, w, fmt.Sprintf("retry: %d\n\n", max(h.interval.Milliseconds(), 1000))); err != nil {
		return
	}
	for {
		h.mu.Lock()
		notify := h.notify
		h.mu.Unlock()
		sent := time.Now()
		ev, err := h.event(ctx)
		if err != nil {
			return // the client went away
		}
		if err := h.send(rc, w, ev); err != nil {
			h.log.Debug("dashboard: stream ended", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-h.closed:
			return
		case <-ticker.C:
		case <-notify:
			if wait := minGap - time.Since(sent); wait > 0 {
				if !sleep(ctx, h.closed, wait) {
					return
				}
			}
		}
	}
}

// event renders the current figures, as the request's principal may see
// them, as one server-sent event. It fails only when ctx is done.
func (h *Handler) event(ctx context.Context) (string, error) {
	d, err := h.dashboard(ctx)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	pg := buildPage(visible(ctx, d), StaticPath, EventsPath)
	u := update{Generated: pg.Generated.Text, GeneratedISO: pg.Generated.ISO, Sections: []section{}}
	if err != nil {
		u.Error = "Figures unavailable at " + pg.Clock + "; retrying."
	} else if pg, err = hashed(pg); err == nil {
		u.NavHash = pg.NavHash
		if u.Nav, err = render("nav", pg); err == nil {
			for _, p := range pg.Practices {
				var s string
				if s, err = render("practice", p); err != nil {
					break
				}
				u.Sections = append(u.Sections, section{ID: p.ID, Hash: p.Hash, HTML: s})
			}
		}
	}
	if err != nil && u.Error == "" {
		h.log.Error("dashboard: render update", "err", err)
		u = update{Generated: u.Generated, GeneratedISO: u.GeneratedISO, Sections: []section{},
			Error: "Figures unavailable at " + pg.Clock + "; retrying."}
	}
	b, err := json.Marshal(u)
	if err != nil {
		return "", fmt.Errorf("encode update: %w", err) // unreachable: strings only
	}
	return "event: update\ndata: " + string(b) + "\n\n", nil
}

// send writes one event and flushes it within writeTimeout.
func (h *Handler) send(rc *http.ResponseController, w io.Writer, ev string) error {
	if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if _, err := io.WriteString(w, ev); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

// sleep waits for d; it returns false when ctx is done or closed is
// closed first.
func sleep(ctx context.Context, closed <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-closed:
		return false
	case <-t.C:
		return true
	}
}
