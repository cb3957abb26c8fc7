package target

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dtm-project/dtm"
)

// FHIRSinkOptions configure a FHIRSink. The zero value is usable.
type FHIRSinkOptions struct {
	// HTTP sends the requests; a client with a 5-minute timeout when nil.
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer Token".
	Token string
	// BatchSize bounds the entries of one transaction Bundle (100 when 0).
	BatchSize int
	// MaxBatchBytes bounds the resource JSON of one transaction Bundle
	// (8 MiB when 0); a single larger resource goes alone.
	MaxBatchBytes int
	// MaxAttempts bounds the attempts at one transaction when the server
	// answers 429 or 5xx or the connection fails (8 when 0).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential delay between
	// attempts (1 s and 1 min when 0); a Retry-After up to MaxBackoff is
	// honoured instead.
	MinBackoff, MaxBackoff time.Duration
	// Logger gets retry warnings, never resource content; slog.Default()
	// when nil.
	Logger *slog.Logger
}

// FHIRSink delivers every applied export to a FHIR R4 server as
// transaction Bundles POSTed to its base URL: a PUT Type/id (an upsert
// with the source's id and JSON) for each resource, referenced types
// first, then a DELETE Type/id for each delete, referencing types first.
// PUT and DELETE are idempotent, so delivering a batch again after a crash
// or a failed attempt converges to the same state. It is safe for
// concurrent use.
type FHIRSink struct {
	base string
	name string
	o    FHIRSinkOptions
	log  *slog.Logger
}

var _ Sink = (*FHIRSink)(nil)

// NewFHIRSink returns a sink for the FHIR server at base (its FHIR base
// URL, http or https). It returns an EInvalid error for a bad URL.
func NewFHIRSink(base string, o FHIRSinkOptions) (*FHIRSink, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, dtm.Errorf(dtm.EInvalid, "fhir sink: %q is not an http(s) URL", base)
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 5 * time.Minute}
	}
	o.BatchSize = cmp(o.BatchSize, 100)
	o.MaxBatchBytes = cmp(o.MaxBatchBytes, 8<<20)
	o.MaxAttempts = cmp(o.MaxAttempts, 8)
	o.MinBackoff = time.Duration(cmp(int64(o.MinBackoff), int64(time.Second)))
	o.MaxBackoff = time.Duration(cmp(int64(o.MaxBackoff), int64(time.Minute)))
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	base = strings.TrimRight(u.String(), "/")
	return &FHIRSink{base: base, name: "fhir:" + base, o: o, log: o.Logger}, nil
}

// Name returns "fhir:" and the base URL (without credentials).
func (s *FHIRSink) Name() string { return s.name }

// Deliver sends b as transactions of at most BatchSize entries. A
// transaction the server refuses (a 4xx, or a 5xx after every attempt) is
// returned as a *FHIRRefusedError naming the failing entry.
func (s *FHIRSink) Deliver(ctx context.Context, b *Batch) error {
	var tx transaction
	for r, err := range b.Resources(ctx) {
		if err != nil {
			return err
		}
		if tx.len() > 0 && (tx.len() == s.o.BatchSize || tx.bytes+len(r.JSON) > s.o.MaxBatchBytes) {
			if err := s.send(ctx, &tx); err != nil {
				return err
			}
		}
		tx.add("PUT", Ref{r.Type, r.ID}, r.JSON)
	}
	for _, d := range b.Deletes() {
		if tx.len() == s.o.BatchSize {
			if err := s.send(ctx, &tx); err != nil {
				return err
			}
		}
		tx.add("DELETE", d, nil)
	}
	if tx.len() > 0 {
		return s.send(ctx, &tx)
	}
	return nil
}

// transaction accumulates the entries of one transaction Bundle.
type transaction struct {
	methods []string
	refs    []Ref
	bodies  [][]byte
	bytes   int
}

func (t *transaction) len() int { return len(t.refs) }

func (t *transaction) add(method string, r Ref, resource []byte) {
	t.methods, t.refs, t.bodies = append(t.methods, method), append(t.refs, r), append(t.bodies, resource)
	t.bytes += len(resource)
}

// part returns entries [i, j) as a transaction.
func (t *transaction) part(i, j int) *transaction {
	p := &transaction{methods: t.methods[i:j], refs: t.refs[i:j], bodies: t.bodies[i:j]}
	for _, b := range p.bodies {
		p.bytes += len(b)
	}
	return p
}

// bundle renders the transaction Bundle. Resources are copied byte for
// byte (encoding/json would escape <, > and &).
func (t *transaction) bundle(base string) []byte {
	var b bytes.Buffer
	b.Grow(t.bytes + 128*len(t.refs))
	b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
	for i, r := range t.refs {
		if i > 0 {
			b.WriteByte(',')
		}
		rel := jsonString(r.String())
		if t.methods[i] == "PUT" {
			b.WriteString(`{"fullUrl":` + jsonString(base+"/"+r.String()) + `,"resource":`)
			b.Write(t.bodies[i])
			b.WriteString(`,"request":{"method":"PUT","url":` + rel + `}}`)
		} else {
			b.WriteString(`{"request":{"method":"DELETE","url":` + rel + `}}`)
		}
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// send posts the transaction, retrying, and resets it. When the server
// refuses it without saying which entry failed, the halves are sent apart
// until one entry is found to be refused on its own.
func (s *FHIRSink) send(ctx context.Context, t *transaction) error {
	err := s.post(ctx, t)
	var re *FHIRRefusedError
	if errors.As(err, &re) && re.Entry == 0 && t.len() > 1 && re.Status < 500 && re.Status != http.StatusTooManyRequests {
		err = s.bisect(ctx, t, re)
	}
	*t = transaction{}
	return err
}

// bisect finds an entry the server refuses on its own; it returns first
// when every half is accepted (the entries failed only together).
func (s *FHIRSink) bisect(ctx context.Context, t *transaction, first *FHIRRefusedError) error {
	if t.len() == 1 {
		return first
	}
	mid := t.len() / 2
	for _, h := range []struct{ from, to int }{{0, mid}, {mid, t.len()}} {
		half := t.part(h.from, h.to)
		err := s.post(ctx, half)
		var re *FHIRRefusedError
		if !errors.As(err, &re) {
			if err != nil {
				return err
			}
			continue
		}
		if re.Entry == 0 && half.len() > 1 {
			return s.bisect(ctx, half, re)
		}
		return re
	}
	return first
}

// FHIRRefusedError reports a transaction the FHIR server refused.
type FHIRRefusedError struct {
	Status int // HTTP status of the answer
	// Entry is the 1-based position of the refused entry in the
	// transaction, 0 when the server did not say and it could not be found.
	Entry   int
	Entries int
	Method  string // of the refused entry
	Ref     Ref    // of the refused entry
	// Diagnostics are the OperationOutcome's issues, shortened.
	Diagnostics string
}

func (e *FHIRRefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fhir server refused the transaction (HTTP %d)", e.Status)
	if e.Entry > 0 {
		fmt.Fprintf(&b, " at entry %d of %d, %s %s", e.Entry, e.Entries, e.Method, e.Ref)
	} else {
		fmt.Fprintf(&b, " of %d entries", e.Entries)
	}
	if e.Diagnostics != "" {
		b.WriteString(": " + e.Diagnostics)
	}
	return b.String()
}

// post sends one transaction, retrying 429, 5xx and connection failures
// with backoff.
func (s *FHIRSink) post(ctx context.Context, t *transaction) error {
	body := t.bundle(s.base)
	for attempt := 1; ; attempt++ {
		status, resp, wait, err := s.postOnce(ctx, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		retry := err != nil || status == http.StatusTooManyRequests || status >= 500
		switch {
		case err == nil && status >= 200 && status < 300:
			return checkResponse(status, resp, t)
		case !retry || attempt >= s.o.MaxAttempts:
			if err != nil {
				return dtm.Errorf(dtm.EUnavailable, "fhir sink: %d attempts failed: %v", attempt, err)
			} else if retry {
				return fmt.Errorf("%w (%d attempts)", refused(status, resp, t), attempt)
			}
			return refused(status, resp, t)
		}
		d := min(s.o.MinBackoff<<(attempt-1), s.o.MaxBackoff)
		if wait > 0 {
			d = min(wait, s.o.MaxBackoff)
		}
		s.log.Warn("fhir sink: transaction failed; retrying", "sink", s.name, "status", status,
			"err", err, "attempt", attempt, "wait", d.String())
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// maxAnswer bounds the answer read from the FHIR server.
const maxAnswer = 64 << 20

// postOnce posts body and returns the status, the answer and its
// Retry-After.
func (s *FHIRSink) postOnce(ctx context.Context, body []byte) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	if s.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.o.Token)
	}
	resp, err := s.o.HTTP.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, 0, err
	}
	var wait time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		wait = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, answer, wait, nil
}

// refusalOutcome is the part of an OperationOutcome the sink reads.
type refusalOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string                `json:"severity"`
		Code        string                `json:"code"`
		Diagnostics string                `json:"diagnostics"`
		Details     struct{ Text string } `json:"details"`
		Expression  []string              `json:"expression"`
		Location    []string              `json:"location"`
	} `json:"issue"`
}

// entryIndex finds "entry[N]" (0-based, as FHIRPath writes it) in an
// issue's expression, location or diagnostics.
var entryIndex = regexp.MustCompile(`(?i)entry\[(\d+)\]`)

// refused describes a refusal from the server's OperationOutcome, naming
// the entry it points at.
func refused(status int, answer []byte, t *transaction) *FHIRRefusedError {
	e := &FHIRRefusedError{Status: status, Entries: t.len()}
	var oo refusalOutcome
	if json.Unmarshal(answer, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return e
	}
	var msgs []string
	for _, is := range oo.Issue {
		if is.Severity != "error" && is.Severity != "fatal" {
			continue
		}
		msg := is.Diagnostics
		if msg == "" {
			msg = is.Details.Text
		}
		msgs = append(msgs, is.Code+": "+msg)
		if e.Entry > 0 {
			continue
		}
		for _, where := range append(append(is.Expression, is.Location...), is.Diagnostics) {
			if m := entryIndex.FindStringSubmatch(where); m != nil {
				if i, err := strconv.Atoi(m[1]); err == nil && i < t.len() {
					e.Entry, e.Method, e.Ref = i+1, t.methods[i], t.refs[i]
					break
				}
			}
		}
	}
	if e.Entry == 0 && t.len() == 1 {
		e.Entry, e.Method, e.Ref = 1, t.methods[0], t.refs[0]
	}
	e.Diagnostics = shorten(strings.Join(msgs, "; "), 400)
	return e
}

// checkResponse checks a transaction-response Bundle: every entry must
// have succeeded (a DELETE of a resource already gone counts as success).
func checkResponse(status int, answer []byte, t *transaction) error {
	var b struct {
		Entry []struct {
			Response struct {
				Status  string          `json:"status"`
				Outcome json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if len(bytes.TrimSpace(answer)) == 0 || json.Unmarshal(answer, &b) != nil {
		return nil // some servers answer a transaction with no body
	}
	for i, e := range b.Entry {
		code, _, _ := strings.Cut(strings.TrimSpace(e.Response.Status), " ")
		n, err := strconv.Atoi(code)
		if err != nil || i >= t.len() || (n >= 200 && n < 300) {
			continue
		}
		if t.methods[i] == "DELETE" && (n == http.StatusNotFound || n == http.StatusGone) {
			continue
		}
		re := refused(n, e.Response.Outcome, t.part(i, i+1))
		re.Entry, re.Entries = i+1, t.len()
		return re
	}
	return nil
}

// shorten cuts s to at most n bytes, at a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
