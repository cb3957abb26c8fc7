package target

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/dtm-project/dtm"
)

// FileResult describes a downloaded and verified file.
type FileResult struct {
	Path   string // where the decompressed content is
	SHA256 string // hex SHA-256 of the decompressed content
	Bytes  int64  // decompressed size
	Lines  int64  // non-empty lines
}

// errCountMismatch marks a download whose line count differs from the
// manifest's: usually a truncated body, so it is retried.
var errCountMismatch = errors.New("line count differs from the manifest count")

// FileToken reports whether a request for fileURL should carry the access
// token: only when the manifest requires one and the file is on the
// source's own origin. It returns an EForbidden error when the manifest
// requires a token for a file on another origin, which would leak it.
func (c *Client) FileToken(m *Manifest, fileURL string) (bool, error) {
	if !m.RequiresAccessToken {
		return false, nil
	}
	u, err := url.Parse(fileURL)
	if err != nil {
		return false, dtm.Errorf(dtm.EInvalid, "file URL is invalid")
	}
	if u.Scheme != c.root.Scheme || u.Host != c.root.Host {
		return false, dtm.Errorf(dtm.EForbidden, "manifest requires an access token for a file on another origin")
	}
	return true, nil
}

// DownloadFile streams the NDJSON file at fileURL to path (through path +
// ".part", fsynced, then renamed), asking for gzip and decompressing it
// itself, and verifies it: the number of non-empty lines must equal
// wantCount unless wantCount is negative, and a last line without a
// newline must be complete JSON. Connection errors, stalls (nothing
// received for StallTimeout), truncated bodies, count mismatches, 429 and
// 5xx are retried from scratch with backoff up to MaxAttempts. A token is
// sent only when withToken is set.
func (c *Client) DownloadFile(ctx context.Context, fileURL string, withToken bool, path string, wantCount int64) (FileResult, error) {
	op := "download " + fileLabel(fileURL)
	var lastErr error
	for attempt := 1; attempt <= c.opts.MaxAttempts; attempt++ {
		res, err := c.downloadOnce(ctx, fileURL, withToken, path+".part", wantCount)
		if err == nil {
			if err := commitFile(path+".part", path); err != nil {
				return FileResult{}, fmt.Errorf("%s: %w", op, err)
			}
			res.Path = path
			return res, nil
		}
		lastErr = err
		wait := c.backoff(attempt)
		var se *StatusError
		switch {
		case ctx.Err() != nil:
			return FileResult{}, fmt.Errorf("%s: %w", op, ctx.Err())
		case errors.As(err, &se) && !retryable(se.StatusCode, true):
			return FileResult{}, fmt.Errorf("%s: %w", op, err)
		case errors.As(err, &se) && se.RetryAfter > c.opts.MaxRetryAfter:
			return FileResult{}, fmt.Errorf("%s: %w", op, err)
		case errors.As(err, &se) && se.RetryAfter > 0:
			wait = se.RetryAfter
		case errors.Is(err, errCountMismatch), errors.Is(err, errLastLine), temporary(ctx, err), errors.As(err, &se):
		default:
			return FileResult{}, fmt.Errorf("%s: %w", op, err)
		}
		if attempt < c.opts.MaxAttempts {
			c.log.Warn("download failed; retrying", "attempt", attempt, "wait", wait, "err", err)
			if err := sleep(ctx, wait); err != nil {
				return FileResult{}, fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	os.Remove(path + ".part")
	return FileResult{}, fmt.Errorf("%s: giving up after %d attempts: %w", op, c.opts.MaxAttempts, lastErr)
}

// downloadOnce makes one attempt at a file, writing it to tmp. The
// attempt fails as stalled when the source sends nothing for StallTimeout.
func (c *Client) downloadOnce(ctx context.Context, fileURL string, withToken bool, tmp string, wantCount int64) (FileResult, error) {
	req, err := c.request(ctx, http.MethodGet, fileURL, withToken)
	if err != nil {
		return FileResult{}, err
	}
	req.Header.Set("Accept", NDJSONFormat)
	req.Header.Set("Accept-Encoding", "gzip")
	actx, wd := c.watch(ctx)
	defer wd.stop()
	resp, err := c.opts.HTTP.Do(req.WithContext(actx))
	if err != nil {
		return FileResult{}, wd.check(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return FileResult{}, c.statusError("download", resp)
	}
	var body io.Reader = wd.body(resp.Body)
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return FileResult{}, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		body = zr
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return FileResult{}, err
	}
	defer f.Close()
	h, lc := sha256.New(), &lineCounter{}
	n, err := io.Copy(f, io.TeeReader(body, io.MultiWriter(h, lc)))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return FileResult{}, fmt.Errorf("body cut short after %d bytes: %w", n, err)
	} else if err != nil {
		return FileResult{}, err
	}
	if err := f.Sync(); err != nil {
		return FileResult{}, err
	}
	if err := f.Close(); err != nil {
		return FileResult{}, err
	}
	res := FileResult{SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: n, Lines: lc.lines()}
	if wantCount >= 0 && res.Lines != wantCount {
		return FileResult{}, fmt.Errorf("%w: got %d, want %d", errCountMismatch, res.Lines, wantCount)
	}
	if lc.content {
		// No newline after the last line: a body cut short inside it would
		// still count right. Only complete JSON passes.
		if err := checkLastLine(tmp, lc.lineStart, n); err != nil {
			return FileResult{}, err
		}
	}
	return res, nil
}

// errLastLine marks a download whose last line, not ended by a newline,
// is not complete JSON: a body cut short in transit (behind a
// Content-Length that matched what arrived). It is retried.
var errLastLine = errors.New("last line is not complete JSON: the body was cut short")

// checkLastLine reports errLastLine unless bytes [from, to) of the file
// at path are one complete JSON value.
func checkLastLine(path string, from, to int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	line, err := io.ReadAll(io.NewSectionReader(f, from, to-from))
	if err != nil {
		return err
	}
	if !json.Valid(line) {
		return fmt.Errorf("%w (%d bytes)", errLastLine, len(line))
	}
	return nil
}

// fileLabel names a file in errors: the last element of its URL's path
// (the export's file name, e.g. 3-output-Observation.ndjson).
func fileLabel(fileURL string) string {
	u, err := url.Parse(fileURL)
	if err != nil || path.Base(u.Path) == "/" || path.Base(u.Path) == "." {
		return "file"
	}
	return path.Base(u.Path)
}

// commitFile renames tmp to path and fsyncs the directory, so that a
// verified file survives a crash.
func commitFile(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lineCounter counts non-empty lines (a last line without "\n" counts)
// and remembers where the current line starts.
type lineCounter struct {
	n         int64
	content   bool  // the current line has a non-space byte
	off       int64 // bytes seen
	lineStart int64 // offset of the current line's first byte
}

func (l *lineCounter) Write(p []byte) (int, error) {
	for i, b := range p {
		switch b {
		case '\n':
			if l.content {
				l.n++
			}
			l.content = false
			l.lineStart = l.off + int64(i) + 1
		case ' ', '\t', '\r':
		default:
			l.content = true
		}
	}
	l.off += int64(len(p))
	return len(p), nil
}

func (l *lineCounter) lines() int64 {
	if l.content {
		return l.n + 1
	}
	return l.n
}

// forEach calls fn for i in [0, n) on at most parallel goroutines. After
// the first error it starts no more calls, cancels the ctx given to the
// calls in progress, and returns that error once they have returned.
func forEach(ctx context.Context, n, parallel int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// hashWriter is a hash that is also counted, for binaries.
type hashWriter struct {
	hashes []hash.Hash
	n      int64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	for _, h := range w.hashes {
		h.Write(p)
	}
	w.n += int64(len(p))
	return len(p), nil
}
