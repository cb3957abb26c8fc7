package target

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dtm-project/dtm"
)

// Authorizer supplies bearer tokens for requests to the source (SMART
// Backend Services). Token is called before every request that needs one,
// so implementations cache tokens until shortly before they expire. It must
// be safe for concurrent use.
type Authorizer interface {
	Token(ctx context.Context) (string, error)
}

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	// HTTP sends the requests. Nil means a client whose transport does not
	// decompress transparently (the Client handles gzip itself) and waits
	// at most a minute for response headers.
	HTTP *http.Client
	// Auth supplies tokens; nil sends no Authorization header (a source
	// running --auth none).
	Auth Authorizer
	// Logger receives operational messages, never patient data;
	// slog.Default() when nil.
	Logger *slog.Logger
	// Clock interprets Retry-After dates; dtm.SystemClock{} when nil.
	Clock dtm.Clock
	// UserAgent is sent with every request; "dtm-target" when empty.
	UserAgent string
	// MaxAttempts bounds the attempts of one request or download (6 when 0).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the capped exponential backoff
	// between retries and between polls without Retry-After (500 ms and
	// 30 s when 0).
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryAfter caps how long a Retry-After may make the client wait
	// (10 minutes when 0), so that a hostile value cannot stall a pull. A
	// 429 or 503 asking for longer fails at once (with a *StatusError
	// carrying the RetryAfter); a status poll waits at most this long.
	MaxRetryAfter time.Duration
	// Rand returns a float in [0, 1) for backoff jitter; math/rand/v2 when
	// nil.
	Rand func() float64
	// StallTimeout bounds how long one attempt of a request or download
	// waits for the source to send anything: the response headers, or the
	// next bytes of a body. An attempt that hears nothing for that long
	// fails as stalled and is retried like a broken connection (1 minute
	// when 0). The clock restarts at each read that brings bytes, so a
	// caller that stops reading a response body for that long ends the
	// attempt too. Binary fetches for attachments use it as well, and
	// resume with Range after a stall.
	StallTimeout time.Duration
}

// Client talks FHIR Bulk Data and the dtm control plane to one source. It
// is safe for concurrent use. Every method takes ctx first and stops when
// it is done; every response body it opens it closes.
type Client struct {
	root *url.URL // the source's root, e.g. https://host:8443
	fhir *url.URL // the FHIR base, root + /fhir
	opts ClientOptions
	log  *slog.Logger
}

// NewClient returns a client for the source at sourceURL: the server's
// root URL (https://host:port), or its FHIR base ending in /fhir. It
// returns an EInvalid error for a URL that is not absolute http(s).
func NewClient(sourceURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(sourceURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, dtm.Errorf(dtm.EInvalid, "source URL must be an absolute http or https URL")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/fhir")
	u.RawPath = ""
	c := &Client{root: u, opts: opts, log: opts.Logger}
	c.fhir = u.JoinPath("fhir")
	if c.opts.HTTP == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableCompression = true
		t.ResponseHeaderTimeout = time.Minute
		c.opts.HTTP = &http.Client{Transport: t}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.opts.Clock == nil {
		c.opts.Clock = dtm.SystemClock{}
	}
	if c.opts.UserAgent == "" {
		c.opts.UserAgent = "dtm-target"
	}
	if c.opts.MaxAttempts <= 0 {
		c.opts.MaxAttempts = 6
	}
	if c.opts.MinBackoff <= 0 {
		c.opts.MinBackoff = 500 * time.Millisecond
	}
	if c.opts.MaxBackoff <= 0 {
		c.opts.MaxBackoff = 30 * time.Second
	}
	if c.opts.MaxRetryAfter <= 0 {
		c.opts.MaxRetryAfter = 10 * time.Minute
	}
	if c.opts.Rand == nil {
		c.opts.Rand = rand.Float64
	}
	if c.opts.StallTimeout <= 0 {
		c.opts.StallTimeout = time.Minute
	}
	return c, nil
}

// Source returns the source's root URL, normalised: the key of its
// checkpoints.
func (c *Client) Source() string { return c.root.String() }

// FHIRBase returns the source's FHIR base URL (root + /fhir).
func (c *Client) FHIRBase() string { return c.fhir.String() }

// StatusError is a response from the source with an unexpected status. Its
// Diagnostics come from the OperationOutcome the source sent, if any. It
// unwraps to a *dtm.Error whose code matches the status (404 ENotFound, 410
// EGone, 429 ETooMany, 5xx EUnavailable, ...).
type StatusError struct {
	Op          string // what the client was doing, e.g. "kick-off"
	StatusCode  int
	Diagnostics string
	RetryAfter  time.Duration // from the Retry-After header; 0 if none
}

// Error implements error.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: source answered %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Diagnostics != "" {
		s += ": " + e.Diagnostics
	}
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.Round(time.Second).String() + ")"
	}
	return s
}

// Unwrap returns the dtm error equivalent to the status.
func (e *StatusError) Unwrap() error {
	code := dtm.EInternal
	switch s := e.StatusCode; {
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		code = dtm.EInvalid
	case s == http.StatusUnauthorized:
		code = dtm.EUnauthorized
	case s == http.StatusForbidden:
		code = dtm.EForbidden
	case s == http.StatusNotFound:
		code = dtm.ENotFound
	case s == http.StatusGone:
		code = dtm.EGone
	case s == http.StatusTooManyRequests:
		code = dtm.ETooMany
	case s == http.StatusNotImplemented:
		code = dtm.ENotSupported
	case s >= 500:
		code = dtm.EUnavailable
	}
	return &dtm.Error{Code: code, Message: e.Error()}
}

// statusError reads (at most 64 KiB of) resp's body for an
// OperationOutcome's diagnostics and returns a *StatusError. It does not
// close the body.
func (c *Client) statusError(op string, resp *http.Response) *StatusError {
	e := &StatusError{Op: op, StatusCode: resp.StatusCode, RetryAfter: c.retryAfter(resp)}
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &oo) == nil {
		var parts []string
		for _, is := range oo.Issue {
			if d := is.Diagnostics + is.Details.Text; d != "" {
				parts = append(parts, d)
			} else if is.Code != "" {
				parts = append(parts, is.Code)
			}
		}
		e.Diagnostics = strings.Join(parts, "; ")
	}
	return e
}

// retryAfter parses Retry-After (delay-seconds or an HTTP date). It
// returns 0 when the header is absent or unreadable.
func (c *Client) retryAfter(resp *http.Response) time.Duration {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		d = time.Duration(n * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(c.opts.Clock.Now())
	}
	return max(d, 0)
}

// backoff returns the jittered delay before retry number attempt (1-based):
// MinBackoff doubled each attempt, capped at MaxBackoff, ±20 %.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.MinBackoff
	for i := 1; i < attempt && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*c.opts.Rand()))
}

// sleep waits d or until ctx is done, returning ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request builds a request with the client's common headers and, when
// withToken is set and an Authorizer is configured, a bearer token.
func (c *Client) request(ctx context.Context, method, u string, withToken bool) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if withToken && c.opts.Auth != nil {
		tok, err := c.opts.Auth.Token(ctx)
		if err != nil {
			return nil, fmt.Errorf("access token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// invalidator is implemented by Authorizers that cache tokens (such as
// auth.ClientCredentials): Invalidate drops a token the source refused.
type invalidator interface{ Invalidate(token string) }

// invalidate drops the bearer token req carried, when the Authorizer can,
// and reports whether a retry may get a new one.
func (c *Client) invalidate(req *http.Request) bool {
	tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	inv, can := c.opts.Auth.(invalidator)
	if !ok || !can {
		return false
	}
	inv.Invalidate(tok)
	return true
}

// retryable reports whether a response status is worth retrying: 429 and
// the transient 5xx (502, 503, 504; 500 too when also500).
func retryable(status int, also500 bool) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout:
		return true
	case http.StatusInternalServerError:
		return also500
	}
	return false
}

// temporary reports whether a transport error is worth retrying: anything
// but the caller's own cancellation and a malformed URL.
func temporary(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Op == "parse" {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errStalled) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

// send performs the request newReq builds, retrying transport errors and
// retryable statuses up to MaxAttempts times with backoff (or the
// Retry-After the source sent). It returns the first response with any
// other status, whose body the caller must close, or the last error (a
// *StatusError for a status).
func (c *Client) send(ctx context.Context, op string, newReq func() (*http.Request, error), also500 bool) (*http.Response, error) {
	var lastErr error
	renewed := false // a 401 made us ask for a new token once
	for attempt := 1; ; attempt++ {
		req, err := newReq()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		actx, wd := c.watch(ctx)
		req = req.WithContext(actx)
		resp, err := c.opts.HTTP.Do(req)
		err = wd.check(err)
		wait := c.backoff(attempt)
		switch {
		case err != nil && !temporary(ctx, err):
			wd.stop()
			return nil, fmt.Errorf("%s: %w", op, err)
		case err != nil:
			lastErr = fmt.Errorf("%s: %w", op, err)
		case resp.StatusCode == http.StatusUnauthorized && !renewed && c.invalidate(req):
			lastErr, wait, renewed = c.statusError(op, resp), 0, true
			resp.Body.Close()
		case retryable(resp.StatusCode, also500):
			se := c.statusError(op, resp)
			resp.Body.Close()
			if se.RetryAfter > c.opts.MaxRetryAfter {
				wd.stop()
				return nil, se // e.g. the agreed number of retrievals is used up
			}
			lastErr = se
			if se.RetryAfter > 0 {
				wait = se.RetryAfter
			}
		default:
			resp.Body = wd.body(resp.Body)
			return resp, nil
		}
		wd.stop()
		if attempt >= c.opts.MaxAttempts {
			return nil, lastErr
		}
		c.log.Debug("retrying", "op", op, "attempt", attempt, "wait", wait, "err", lastErr)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
}

// errStalled marks an attempt to which the source sent nothing for
// StallTimeout; it is retried like a broken connection.
var errStalled = errors.New("source stalled")

// watchdog aborts one attempt when the source sends nothing for a while:
// neither response headers nor body bytes.
type watchdog struct {
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
	fired  atomic.Bool
}

// watch returns the context for one attempt, cancelled when the
// watchdog fires or stops, and the watchdog, which is already counting.
// The caller must stop it (directly, or by closing a body it wraps).
func (c *Client) watch(ctx context.Context) (context.Context, *watchdog) {
	actx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{d: c.opts.StallTimeout, cancel: cancel}
	w.timer = time.AfterFunc(w.d, func() {
		w.fired.Store(true)
		cancel(errStalled)
	})
	return actx, w
}

// stop ends the attempt: the timer and the attempt's context.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
}

// check returns err, or, when the watchdog fired, an errStalled error
// saying for how long nothing came.
func (w *watchdog) check(err error) error {
	if err != nil && !errors.Is(err, io.EOF) && w.fired.Load() {
		return fmt.Errorf("%w: nothing received for %s", errStalled, w.d)
	}
	return err
}

// body wraps a response body so that every read that brings bytes
// restarts the watchdog, a stalled read fails with errStalled, and Close
// stops the watchdog. The headers have just arrived: it restarts it.
func (w *watchdog) body(rc io.ReadCloser) io.ReadCloser {
	w.timer.Reset(w.d)
	return &watchedBody{rc: rc, w: w}
}

type watchedBody struct {
	rc io.ReadCloser
	w  *watchdog
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.w.timer.Reset(b.w.d)
	}
	return n, b.w.check(err)
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}

// getJSON GETs u (with a token when withToken) and decodes a 200 response
// into v. A body cut short in transit (a reset, a stall, a truncated or
// short body) is fetched again, up to MaxAttempts times. A 404 is returned
// as a *StatusError (ENotFound).
func (c *Client) getJSON(ctx context.Context, op, u string, withToken bool, v any) error {
	for attempt := 1; ; attempt++ {
		err := c.getJSONOnce(ctx, op, u, withToken, v)
		var be *bodyError
		if !errors.As(err, &be) || attempt >= c.opts.MaxAttempts {
			return err
		}
		c.log.Debug("response cut short; fetching it again", "op", op, "attempt", attempt, "err", err)
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
}

// bodyError is a response body that broke off in transit.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// getJSONOnce is one getJSON request (with send's retries); a body that
// breaks off is a *bodyError.
func (c *Client) getJSONOnce(ctx context.Context, op, u string, withToken bool, v any) error {
	resp, err := c.send(ctx, op, func() (*http.Request, error) {
		req, err := c.request(ctx, http.MethodGet, u, withToken)
		if err == nil {
			req.Header.Set("Accept", "application/fhir+json, application/json")
		}
		return req, err
	}, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusError(op, resp)
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxJSONResponse + 1}
	if err := json.NewDecoder(lr).Decode(v); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("%s: response larger than %d MiB", op, maxJSONResponse>>20)
		}
		if temporary(ctx, err) {
			return &bodyError{fmt.Errorf("%s: read response: %w", op, err)}
		}
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	return nil
}

// maxJSONResponse bounds a JSON response the client decodes: the largest is
// a digest bucket of the resources in no patient's compartment (schedules,
// slots, practitioners), about 150 bytes each.
const maxJSONResponse = 512 << 20
