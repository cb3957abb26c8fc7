package target

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// NDJSONFormat is the _outputFormat the client asks for.
const NDJSONFormat = "application/fhir+ndjson"

// KickOffOptions refine an export request. The zero value exports every
// type of the practice since the beginning.
type KickOffOptions struct {
	// Since is sent as _since when not zero: the transactionTime of the last
	// export applied.
	Since time.Time
	// Types is sent as _type when not empty.
	Types []string
}

// KickOff starts a Group export of the practice
// ([base]/Group/{ods}/$export) and returns the absolute status URL from
// Content-Location. A 429 is retried after its Retry-After (within
// MaxAttempts); any other failure is a *StatusError carrying the source's
// OperationOutcome diagnostics.
func (c *Client) KickOff(ctx context.Context, practice string, o KickOffOptions) (string, error) {
	if !dtm.ValidODS(practice) {
		return "", dtm.Errorf(dtm.EInvalid, "kick-off: invalid ODS code")
	}
	u := c.fhir.JoinPath("Group", practice, "$export")
	q := url.Values{"_outputFormat": {NDJSONFormat}}
	if !o.Since.IsZero() {
		q.Set("_since", fhir.FormatInstant(o.Since))
	}
	if len(o.Types) > 0 {
		q.Set("_type", strings.Join(o.Types, ","))
	}
	u.RawQuery = q.Encode()
	resp, err := c.send(ctx, "kick-off", func() (*http.Request, error) {
		req, err := c.request(ctx, http.MethodGet, u.String(), true)
		if err == nil {
			req.Header.Set("Accept", "application/fhir+json")
			req.Header.Set("Prefer", "respond-async")
		}
		return req, err
	}, false)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return "", c.statusError("kick-off", resp)
	}
	loc := resp.Header.Get("Content-Location")
	if loc == "" {
		return "", dtm.Errorf(dtm.EInvalid, "kick-off: 202 without Content-Location")
	}
	abs, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", dtm.Errorf(dtm.EInvalid, "kick-off: invalid Content-Location")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	c.log.Info("export started", "practice", practice, "since", o.Since, "status_url", abs.String())
	return abs.String(), nil
}

// Manifest is a completed export's manifest.
type Manifest struct {
	TransactionTime     time.Time
	Request             string
	RequiresAccessToken bool
	Output              []ManifestFile
	Deleted             []ManifestFile
	Error               []ManifestFile
}

// ManifestFile is one file entry of a manifest.
type ManifestFile struct {
	Type  string
	URL   string // absolute
	Count int64  // -1 when the manifest gave no count
}

type manifestJSON struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []manifestFile `json:"output"`
	Deleted             []manifestFile `json:"deleted"`
	Error               []manifestFile `json:"error"`
}

type manifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int64 `json:"count"`
}

// ParseManifest decodes a manifest, resolving relative file URLs against
// base. It returns an EInvalid error for a manifest without a valid
// transactionTime or with a file entry lacking a URL.
func ParseManifest(data []byte, base string) (*Manifest, error) {
	var mj manifestJSON
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, dtm.Errorf(dtm.EInvalid, "manifest: not JSON")
	}
	tt, err := parseInstant(mj.TransactionTime)
	if err != nil || tt.IsZero() {
		return nil, dtm.Errorf(dtm.EInvalid, "manifest: missing or invalid transactionTime")
	}
	b, err := url.Parse(base)
	if err != nil {
		return nil, dtm.Errorf(dtm.EInvalid, "manifest: invalid base URL")
	}
	m := &Manifest{TransactionTime: tt, Request: mj.Request, RequiresAccessToken: mj.RequiresAccessToken}
	for _, list := range []struct {
		dst *[]ManifestFile
		src []manifestFile
	}{{&m.Output, mj.Output}, {&m.Deleted, mj.Deleted}, {&m.Error, mj.Error}} {
		for _, f := range list.src {
			u, err := b.Parse(f.URL)
			if f.URL == "" || err != nil {
				return nil, dtm.Errorf(dtm.EInvalid, "manifest: file entry without a valid url")
			}
			mf := ManifestFile{Type: f.Type, URL: u.String(), Count: -1}
			if f.Count != nil {
				mf.Count = *f.Count
			}
			*list.dst = append(*list.dst, mf)
		}
	}
	return m, nil
}

// PollStatus is the result of one status request.
type PollStatus struct {
	Done       bool          // the export is complete: Manifest and Raw are set
	Progress   string        // X-Progress, while in progress
	RetryAfter time.Duration // Retry-After, while in progress (0 if none)
	Manifest   *Manifest
	Raw        []byte // the manifest as received
}

// PollOnce requests the export's status once. It returns a *StatusError
// for a failed (5xx with an OperationOutcome), expired (404, 410) or
// otherwise refused export, and a *bodyError for a manifest cut short in
// transit (which Poll requests again).
func (c *Client) PollOnce(ctx context.Context, statusURL string) (PollStatus, error) {
	resp, err := c.send(ctx, "export status", func() (*http.Request, error) {
		req, err := c.request(ctx, http.MethodGet, statusURL, true)
		if err == nil {
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	}, false)
	if err != nil {
		return PollStatus{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return PollStatus{Progress: resp.Header.Get("X-Progress"), RetryAfter: c.retryAfter(resp)}, nil
	case http.StatusOK:
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return PollStatus{}, &bodyError{fmt.Errorf("export status: read manifest: %w", err)}
		}
		if cutShort(raw) {
			return PollStatus{}, &bodyError{fmt.Errorf("export status: manifest ends after %d bytes, in the middle of its JSON", len(raw))}
		}
		m, err := ParseManifest(raw, statusURL)
		if err != nil {
			return PollStatus{}, fmt.Errorf("export status: %w", err)
		}
		return PollStatus{Done: true, Manifest: m, Raw: raw}, nil
	}
	return PollStatus{}, c.statusError("export status", resp)
}

// Poll requests the export's status until it is complete, waiting between
// requests for the source's Retry-After or, when it sends none, a capped
// exponential backoff. Progress changes are logged and passed to progress
// (which may be nil). It returns the manifest and its raw bytes, or the
// first error (ctx's error when ctx is done). A manifest cut short in
// transit (a reset, a stall, a short body) is requested again, up to
// MaxAttempts times in a row.
func (c *Client) Poll(ctx context.Context, statusURL string, progress func(string)) (*Manifest, []byte, error) {
	last, cut := "", 0
	for attempt := 1; ; attempt++ {
		st, err := c.PollOnce(ctx, statusURL)
		var be *bodyError
		if errors.As(err, &be) && cut+1 < c.opts.MaxAttempts {
			cut++
			c.log.Debug("manifest cut short; polling again", "attempt", cut, "err", err)
			if err := sleep(ctx, c.backoff(cut)); err != nil {
				return nil, nil, fmt.Errorf("export status: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		cut = 0
		if st.Done {
			return st.Manifest, st.Raw, nil
		}
		if st.Progress != last {
			last = st.Progress
			c.log.Info("export in progress", "progress", last)
			if progress != nil {
				progress(last)
			}
		}
		wait := min(st.RetryAfter, c.opts.MaxRetryAfter)
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, nil, fmt.Errorf("export status: %w", err)
		}
	}
}

// cutShort reports whether raw is the beginning of a JSON value that
// ends too soon (including nothing at all): a body truncated in transit
// behind a Content-Length that matched what arrived.
func cutShort(raw []byte) bool {
	err := json.NewDecoder(bytes.NewReader(raw)).Decode(new(json.RawMessage))
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// Cancel asks the source to cancel (or delete) the export. An export the
// source no longer knows (404, 410) counts as cancelled.
func (c *Client) Cancel(ctx context.Context, statusURL string) error {
	resp, err := c.send(ctx, "cancel export", func() (*http.Request, error) {
		return c.request(ctx, http.MethodDelete, statusURL, true)
	}, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound, http.StatusGone:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return c.statusError("cancel export", resp)
}
