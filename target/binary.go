package target

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/dtm-project/dtm"
)

// BinaryResult describes fetched attachment content.
type BinaryResult struct {
	Path        string // the raw content
	ContentType string
	Size        int64
	SHA1        string // base64 SHA-1, as FHIR Attachment.hash carries it
	SHA256      string // hex SHA-256
	Resumed     int    // how many times the download resumed with Range
}

// FetchBinary downloads the raw content at u (a source /fhir/Binary/{id}
// URL) to path, asking for the content itself rather than a Binary
// resource. After a dropped connection it resumes where it stopped with a
// Range request (guarded by If-Range when the source sent an ETag), and
// starts over if the source answers with the whole content. It refuses
// content over maxBytes (when > 0) with an ETooLarge error. 404 and 410
// give a *StatusError (ENotFound, EGone) at once; 429 and 5xx are retried.
func (c *Client) FetchBinary(ctx context.Context, u string, withToken bool, path string, maxBytes int64) (BinaryResult, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
	}
	defer f.Close()
	b := binaryFetch{c: c, url: u, withToken: withToken, f: f, max: maxBytes}
	var lastErr error
	for attempt := 1; attempt <= c.opts.MaxAttempts; attempt++ {
		done, err := b.attempt(ctx)
		if done {
			return b.result(path)
		}
		lastErr = err
		var se *StatusError
		wait := c.backoff(attempt)
		switch {
		case ctx.Err() != nil:
			return BinaryResult{}, fmt.Errorf("fetch binary: %w", ctx.Err())
		case errors.As(err, &se) && !retryable(se.StatusCode, true):
			return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
		case errors.As(err, &se) && se.RetryAfter > c.opts.MaxRetryAfter:
			return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
		case errors.As(err, &se) && se.RetryAfter > 0:
			wait = se.RetryAfter
		case dtm.ErrorCode(err) == dtm.ETooLarge:
			return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
		}
		if attempt < c.opts.MaxAttempts {
			c.log.Warn("attachment download failed; retrying", "attempt", attempt, "offset", b.n, "err", err)
			if err := sleep(ctx, wait); err != nil {
				return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
			}
		}
	}
	return BinaryResult{}, fmt.Errorf("fetch binary: giving up after %d attempts: %w", c.opts.MaxAttempts, lastErr)
}

// binaryFetch is the state of one resumable download.
type binaryFetch struct {
	c         *Client
	url       string
	withToken bool
	f         *os.File
	max       int64
	n         int64  // bytes written so far
	etag      string // validator for If-Range
	ctype     string
	resumed   int
}

// attempt requests the rest of the content and appends it to the file. It
// reports done when the content is complete. The attempt fails as stalled
// when the source sends nothing for StallTimeout; the next resumes.
func (b *binaryFetch) attempt(ctx context.Context) (done bool, err error) {
	req, err := b.c.request(ctx, http.MethodGet, b.url, b.withToken)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "application/octet-stream, */*;q=0.5")
	req.Header.Set("Accept-Encoding", "identity")
	if b.n > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(b.n, 10)+"-")
		if b.etag != "" {
			req.Header.Set("If-Range", b.etag)
		}
	}
	actx, wd := b.c.watch(ctx)
	defer wd.stop()
	resp, err := b.c.opts.HTTP.Do(req.WithContext(actx))
	if err != nil {
		return false, wd.check(err)
	}
	body := wd.body(resp.Body)
	defer body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && b.n > 0 && rangeStart(resp) == b.n:
		b.resumed++
	case resp.StatusCode == http.StatusOK:
		if err := b.restart(resp); err != nil {
			return false, err
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && b.n > 0:
		return true, nil // we already hold every byte
	default:
		return false, b.c.statusError("fetch binary", resp)
	}
	if b.max > 0 && resp.ContentLength > 0 && b.n+resp.ContentLength > b.max {
		return false, dtm.Errorf(dtm.ETooLarge, "attachment exceeds %d bytes", b.max)
	}
	var src io.Reader = body
	if b.max > 0 {
		src = io.LimitReader(body, b.max-b.n+1)
	}
	n, err := io.Copy(b.f, src)
	b.n += n
	if b.max > 0 && b.n > b.max {
		return false, dtm.Errorf(dtm.ETooLarge, "attachment exceeds %d bytes", b.max)
	}
	return err == nil, err
}

// restart empties the file for a full (200) response and remembers its
// validator and content type.
func (b *binaryFetch) restart(resp *http.Response) error {
	if err := b.f.Truncate(0); err != nil {
		return err
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b.n = 0
	b.etag = resp.Header.Get("ETag")
	if strings.HasPrefix(b.etag, "W/") {
		b.etag = "" // weak validators may not be used with If-Range
	}
	b.ctype = resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(b.ctype); err == nil && (mt == "application/fhir+json" || mt == "application/json") {
		b.ctype = "application/fhir+json"
	}
	return nil
}

// rangeStart returns the first byte position of a 206 response's
// Content-Range, or -1.
func rangeStart(resp *http.Response) int64 {
	cr := resp.Header.Get("Content-Range")
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return -1
	}
	first, _, _ := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// result fsyncs the file and hashes it.
func (b *binaryFetch) result(path string) (BinaryResult, error) {
	if err := b.f.Sync(); err != nil {
		return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
	}
	s1, s256 := sha1.New(), sha256.New()
	hw := &hashWriter{hashes: []hash.Hash{s1, s256}}
	if _, err := io.Copy(hw, b.f); err != nil {
		return BinaryResult{}, fmt.Errorf("fetch binary: %w", err)
	}
	return BinaryResult{
		Path: path, ContentType: b.ctype, Size: hw.n, Resumed: b.resumed,
		SHA1:   base64.StdEncoding.EncodeToString(s1.Sum(nil)),
		SHA256: hex.EncodeToString(s256.Sum(nil)),
	}, nil
}
