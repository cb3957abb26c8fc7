package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
)

// Paths the Handler serves. Mount it for all three, e.g. with Go 1.22
// patterns: "GET /{$}", "GET /events" and "GET /dashboard/".
const (
	PagePath   = "/"                  // the dashboard page
	EventsPath = "/events"            // the server-sent events stream
	StaticPath = "/dashboard/static/" // its CSS and JavaScript
)

// DefaultInterval is how often the event stream pushes an update when
// Options.Interval is zero.
const DefaultInterval = 5 * time.Second

// DefaultMaxStreams bounds the open event streams when
// Options.MaxStreams is zero; more get 503 Service Unavailable.
const DefaultMaxStreams = 64

var (
	//go:embed templates/*.html
	templateFS embed.FS
	//go:embed static
	staticFS embed.FS

	templates = template.Must(template.New("").Funcs(template.FuncMap{
		"num":    num,
		"add":    func(a, b float64) float64 { return a + b },
		"sub":    func(a, b float64) float64 { return a - b },
		"right":  func(r rect) float64 { return r.X + r.W },
		"bottom": func(r rect) float64 { return r.Y + r.H },
		"mid":    func(r rect) float64 { return r.X + r.W/2 },
	}).ParseFS(templateFS, "templates/*.html"))

	// staticVersion changes whenever the CSS or JS does, so that browsers
	// never keep an old copy past an upgrade.
	staticVersion = func() string {
		h := sha256.New()
		fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := staticFS.ReadFile(p)
				h.Write(b)
			}
			return nil
		})
		return hex.EncodeToString(h.Sum(nil))[:12]
	}()
)

// Options configure a Handler. The zero value is usable.
type Options struct {
	// Clock sets Dashboard.GeneratedAt when the Provider leaves it zero
	// (dtm.SystemClock when nil).
	Clock dtm.Clock
	// Logger receives provider and stream errors (discarded when nil).
	Logger *slog.Logger
	// Interval is how often each event stream pushes an update
	// (DefaultInterval when zero).
	Interval time.Duration
	// MaxStreams bounds the open event streams (DefaultMaxStreams when
	// zero).
	MaxStreams int
}

// Handler serves the dashboard page, its event stream and its static
// files. It is safe for concurrent use. Create it with NewHandler.
type Handler struct {
	provider Provider
	clock    dtm.Clock
	log      *slog.Logger
	interval time.Duration
	slots    chan struct{} // one token per open stream

	mu     sync.Mutex
	gen    uint64        // increases with every Notify
	notify chan struct{} // closed and replaced by Notify

	fetchMu sync.Mutex // one Provider call at a time; guards cache
	cache   snapshot

	closeOnce sync.Once
	closed    chan struct{}
}

// snapshot is the latest figures from the Provider.
type snapshot struct {
	dash Dashboard
	err  error
	at   time.Time // wall time of the call
	gen  uint64
}

// NewHandler returns a Handler showing the figures p provides.
func NewHandler(p Provider, opts Options) *Handler {
	h := &Handler{provider: p, clock: opts.Clock, log: opts.Logger, interval: opts.Interval,
		notify: make(chan struct{}), closed: make(chan struct{})}
	if h.clock == nil {
		h.clock = dtm.SystemClock{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.interval <= 0 {
		h.interval = DefaultInterval
	}
	n := opts.MaxStreams
	if n <= 0 {
		n = DefaultMaxStreams
	}
	h.slots = make(chan struct{}, n)
	return h
}

// ServeHTTP serves PagePath, EventsPath and the files under StaticPath
// (GET and HEAD only), and 404 Not Found for anything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch p := r.URL.Path; {
	case p == PagePath:
		h.servePage(w, r)
	case p == EventsPath:
		h.serveEvents(w, r)
	case len(p) > len(StaticPath) && p[:len(StaticPath)] == StaticPath:
		serveStatic(w, r, p[len(StaticPath):])
	default:
		http.NotFound(w, r)
	}
}

// Notify makes every open event stream push an update now, with figures
// fetched afresh. It never blocks.
func (h *Handler) Notify() {
	h.mu.Lock()
	h.gen++
	close(h.notify)
	h.notify = make(chan struct{})
	h.mu.Unlock()
}

// Close ends every open event stream and refuses new ones with 204 No
// Content (which tells browsers not to reconnect); the page is still
// served. Call it when the server shuts down, before waiting for
// connections to finish. It is safe to call more than once.
func (h *Handler) Close() { h.closeOnce.Do(func() { close(h.closed) }) }

// servePage renders the whole dashboard.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	d, err := h.dashboard(r.Context())
	pg, rerr := hashed(buildPage(visible(r.Context(), d), StaticPath, EventsPath))
	status := http.StatusOK
	if err != nil {
		pg.Error, status = "The figures are unavailable at the moment; try again shortly.", http.StatusServiceUnavailable
	}
	var buf bytes.Buffer
	if rerr != nil {
		h.log.Error("dashboard: render page", "err", rerr)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := templates.ExecuteTemplate(&buf, "page", pageWithVersion(pg)); err != nil {
		h.log.Error("dashboard: render page", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "+
		"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// pageWithVersion points the static URLs at the current version.
func pageWithVersion(p page) page {
	p.Static += staticVersion + "/"
	return p
}

// serveStatic serves an embedded file, named "VERSION/NAME" (any version
// is accepted: the name decides).
func serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	b, err := staticFS.ReadFile("static/" + path.Base(name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype := "text/css; charset=utf-8"
	if path.Ext(name) == ".js" {
		ctype = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// dashboard returns the Provider's figures, calling it at most once per
// half Interval unless Notify was called since.
func (h *Handler) dashboard(ctx context.Context) (Dashboard, error) {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	h.fetchMu.Lock()
	defer h.fetchMu.Unlock()
	if c := h.cache; !c.at.IsZero() && c.gen == gen && time.Since(c.at) < h.interval/2 {
		return c.dash, c.err
	}
	d, err := h.provider(ctx)
	if err != nil {
		if ctx.Err() != nil { // this caller went away: do not cache its failure
			return Dashboard{}, ctx.Err()
		}
		h.log.Error("dashboard: read figures", "err", err)
		d = Dashboard{}
	}
	if d.GeneratedAt.IsZero() {
		d.GeneratedAt = h.clock.Now()
	}
	h.cache = snapshot{dash: d, err: err, at: time.Now(), gen: gen}
	return d, err
}

// visible returns d with only the practices the request's principal may
// read; all of them when the context carries no principal (the
// authentication middleware in front decides who gets here at all).
func visible(ctx context.Context, d Dashboard) Dashboard {
	p, ok := dtm.PrincipalFromContext(ctx)
	if !ok {
		return d
	}
	d.Practices = slices.DeleteFunc(slices.Clone(d.Practices), func(v PracticeView) bool { return !p.CanRead(v.ODS) })
	return d
}

// hashed returns p with the content hashes of its sections and nav set.
func hashed(p page) (page, error) {
	p.Practices = slices.Clone(p.Practices)
	for i := range p.Practices {
		s, err := render("practice", p.Practices[i])
		if err != nil {
			return p, err
		}
		p.Practices[i].Hash = contentHash(s)
	}
	s, err := render("nav", p)
	p.NavHash = contentHash(s)
	return p, err
}

// contentHash is a short hex digest of s.
func contentHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// render executes the named template with data into a string.
func render(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
