package fhir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// BundleEntry is one entry of a Bundle, as ReadBundle hands it over.
type BundleEntry struct {
	Index   int    // 0-based index in Bundle.entry
	Method  string // request.method: "PUT", "POST" or "DELETE"; "" when the entry has no request (collection, searchset)
	URL     string // request.url as written ("" without a request); may hold patient data (never log it)
	FullURL string // fullUrl as written, possibly ""

	ResourceType string // the type written (or deleted)
	ID           string // its id, valid per CheckID: from the resource, the PUT or DELETE url, or a POST's urn:uuid fullUrl
	// Resource is the resource as single-line JSON: insignificant
	// whitespace removed, urn:uuid references rewritten to "Type/id", and
	// "id" inserted after resourceType when it had none; every other byte
	// as written. nil for DELETE. It is newly allocated: fn may keep it.
	Resource []byte
}

// DefaultMaxEntryBytes is the largest Bundle entry ReadBundle accepts by
// default (and the largest other top-level Bundle element).
const DefaultMaxEntryBytes = 64 << 20

// BundleOptions configures ReadBundleWith.
type BundleOptions struct {
	// MaxEntryBytes is the largest entry accepted, as written (whitespace
	// included). 0 means DefaultMaxEntryBytes.
	MaxEntryBytes int
	// TempDir is where input that cannot be re-read (not an io.ReadSeeker)
	// is spooled for the second pass; "" means os.TempDir().
	TempDir string
}

// ReadBundle is ReadBundleWith with default options.
func ReadBundle(r io.Reader, fn func(e BundleEntry) error) (bundleType string, err error) {
	return ReadBundleWith(r, BundleOptions{}, fn)
}

// ReadBundleWith streams a FHIR R4 Bundle of type batch, transaction,
// collection, searchset or history from r, calling fn for each entry in
// order, and returns the Bundle's type. Memory is bounded by the largest
// entry, plus about 40 bytes per entry for the table of urn:uuid fullUrls
// and resource ids (a few hundred bytes per entry when ids are not
// lowercase UUIDs).
//
// urn:uuid references can point forward, so the Bundle is read twice: the
// first pass validates every entry and collects the fullUrls, the second
// rewrites references and calls fn. When r is an io.ReadSeeker (a file, a
// bytes.Reader) it is read from its current offset, then sought back;
// otherwise (a gzip stream, an HTTP body) it is copied to a temporary file
// in opts.TempDir during the first pass and removed before return. Either
// way, fn is called only once the whole Bundle is known to be valid, so an
// invalid Bundle calls fn for no entry.
//
// Entry rules: PUT "Type/id" takes the id from the url (a resource id must
// match it); POST "Type" keeps the resource's id or, when it has none, takes
// the UUID of its urn:uuid fullUrl (an error otherwise), so re-reading the
// same Bundle gives the same ids; DELETE "Type/id" deletes; entries with no
// request (collection, searchset) need a resource with an id. batch and
// transaction Bundles need a request on every entry and may not write one
// resource twice. ifNoneExist, ifMatch and similar conditions are ignored.
// Conditional PUT and DELETE, GET, HEAD and PATCH are not supported.
//
// Errors about one entry are *EntryError; all input errors match
// ErrInvalid, ErrTooLarge or ErrNotSupported and carry no patient data
// (request urls are never echoed: a conditional url can hold an NHS
// number). An error returned by fn stops the reading and is returned as is.
// To stop on cancellation, let fn return ctx.Err().
func ReadBundleWith(r io.Reader, opts BundleOptions, fn func(e BundleEntry) error) (bundleType string, err error) {
	if opts.MaxEntryBytes <= 0 {
		opts.MaxEntryBytes = DefaultMaxEntryBytes
	}
	first, rewind, cleanup, err := twoPass(r, opts.TempDir)
	if err != nil {
		return "", err
	}
	defer cleanup()

	b := &bundleRead{table: newRefTable(), noRequest: -1, dup: -1}
	top, n, err := scanBundle(first, opts.MaxEntryBytes, b.check)
	if err != nil {
		return "", err
	}
	if err := b.finish(top); err != nil {
		return "", err
	}
	second, err := rewind()
	if err != nil {
		return "", err
	}
	var fnErr error
	_, n2, err := scanBundle(second, opts.MaxEntryBytes, func(i int, raw []byte) error {
		e, err := b.entry(i, raw)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	switch {
	case fnErr != nil:
		return "", fnErr
	case err != nil:
		return "", fmt.Errorf("bundle second pass: %w", err)
	case n2 != n:
		return "", fmt.Errorf("bundle changed while read: %d entries, then %d", n, n2)
	}
	return top.typ, nil
}

// twoPass returns a reader for the first pass, a function returning one
// for the second, and a cleanup function.
func twoPass(r io.Reader, tempDir string) (first io.Reader, rewind func() (io.Reader, error), cleanup func(), err error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			rewind := func() (io.Reader, error) {
				if _, err := rs.Seek(start, io.SeekStart); err != nil {
					return nil, fmt.Errorf("rewind bundle: %w", err)
				}
				return rs, nil
			}
			return rs, rewind, func() {}, nil
		}
	}
	f, err := os.CreateTemp(tempDir, "dtm-bundle-*.json")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("spool bundle: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	rewind = func() (io.Reader, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewind spooled bundle: %w", err)
		}
		return f, nil
	}
	return io.TeeReader(r, spoolWriter{f}), rewind, cleanup, nil
}

// spoolWriter marks write errors, so that a full disk is reported as such
// rather than as a read error.
type spoolWriter struct{ f *os.File }

func (w spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = fmt.Errorf("spool bundle: %w", err)
	}
	return n, err
}

// bundleTop holds the Bundle's own elements.
type bundleTop struct {
	resourceType, typ string
}

// bundleTypes are the Bundle types ReadBundle reads; true when every entry
// needs a request.
var bundleTypes = map[string]bool{"batch": true, "transaction": true, "collection": false, "searchset": false, "history": false}

// scanBundle reads the Bundle object from r, calling onEntry with the raw
// bytes of each entry (valid only during the call) and returning the
// Bundle's type and resourceType and the number of entries. An error from
// onEntry is wrapped in an *EntryError unless it is one already or fn's.
func scanBundle(r io.Reader, maxEntry int, onEntry func(i int, raw []byte) error) (top bundleTop, n int, err error) {
	s := newJSONStream(r)
	s.skipBOM()
	if err := s.expect('{', "a Bundle object"); err != nil {
		return top, 0, err
	}
	var buf []byte
	seen := map[string]bool{}
	for first := true; ; first = false {
		c, err := s.peek()
		if err != nil {
			return top, n, err
		}
		if c == '}' {
			s.pos++
			break
		}
		if !first {
			if err := s.expect(',', "',' or '}' in the Bundle"); err != nil {
				return top, n, err
			}
		}
		key, err := bundleKey(s)
		if err != nil {
			return top, n, err
		}
		if seen[key] {
			return top, n, invalidf("bundle: duplicate key %s", quoteID(key))
		}
		if len(seen) < 64 || key == "entry" || key == "type" || key == "resourceType" {
			seen[key] = true // the keys that matter, and a few others
		}
		switch key {
		case "entry":
			if n, err = scanEntries(s, maxEntry, &buf, onEntry); err != nil {
				return top, n, err
			}
		case "resourceType", "type":
			if buf, err = s.readValue(buf[:0], 1024); err != nil || !isString(buf) {
				return top, n, invalidf("bundle: %s is not a string", key)
			}
			w := walker{data: buf}
			if _, _, err := w.str(); err != nil || w.pos != len(buf) {
				return top, n, invalidf("bundle: %s is not a string", key)
			}
			v := stringValue(buf)
			if key == "resourceType" {
				if v != "Bundle" {
					return top, n, invalidf("resourceType is %s, want \"Bundle\"", quoteID(v))
				}
				top.resourceType = v
			} else {
				if _, ok := bundleTypes[v]; !ok {
					return top, n, &inputError{kind: ErrNotSupported, msg: "bundle type " + quoteID(v) + " is not supported"}
				}
				top.typ = v
			}
		default:
			if buf, err = s.readValue(buf[:0], maxEntry); err != nil {
				if err == errValueTooLarge {
					return top, n, &inputError{kind: ErrTooLarge, msg: "bundle element " + quoteID(key) + " exceeds " + formatSize(maxEntry)}
				}
				return top, n, err
			}
			w := walker{data: buf}
			if err := w.value(1); err != nil {
				return top, n, fmt.Errorf("bundle element %s: %w", quoteID(key), err)
			}
			if w.pos != len(buf) {
				return top, n, invalidf("bundle element %s: invalid JSON at byte %d", quoteID(key), w.pos)
			}
		}
	}
	if end, err := s.atEnd(); err != nil {
		return top, n, err
	} else if !end {
		return top, n, invalidf("invalid JSON at byte %d: unexpected data after the Bundle", s.offset())
	}
	if top.resourceType == "" {
		return top, n, invalidf("bundle: missing resourceType")
	}
	return top, n, nil
}

// bundleKey reads an object key and its ':'.
func bundleKey(s *jsonStream) (string, error) {
	raw, err := s.readValue(nil, 1024)
	if err != nil || !isString(raw) {
		return "", invalidf("invalid JSON at byte %d: expected a key in the Bundle", s.offset())
	}
	w := walker{data: raw}
	key, escaped, err := w.str()
	if err != nil || w.pos != len(raw) {
		return "", invalidf("invalid JSON at byte %d: bad key in the Bundle", s.offset())
	}
	if err := s.expect(':', "':' after a key"); err != nil {
		return "", err
	}
	return decodeKey(key, escaped), nil
}

// scanEntries reads the entry array, calling onEntry for each element.
func scanEntries(s *jsonStream, maxEntry int, buf *[]byte, onEntry func(i int, raw []byte) error) (n int, err error) {
	if err := s.expect('[', "entry to be an array"); err != nil {
		return 0, err
	}
	for ; ; n++ {
		c, err := s.peek()
		if err != nil {
			return n, err
		}
		if c == ']' {
			s.pos++
			return n, nil
		}
		if n > 0 {
			if err := s.expect(',', "',' or ']' in entry"); err != nil {
				return n, err
			}
		}
		*buf, err = s.readValue((*buf)[:0], maxEntry)
		if err == errValueTooLarge {
			return n, &EntryError{Index: n, Err: &inputError{kind: ErrTooLarge, msg: "entry exceeds " + formatSize(maxEntry)}}
		} else if err != nil {
			return n, err
		}
		if err := onEntry(n, *buf); err != nil {
			var ee *EntryError
			if errors.As(err, &ee) || !isInputError(err) {
				return n, err
			}
			return n, &EntryError{Index: n, Err: err}
		}
		if cap(*buf) > bigBuffer {
			*buf = nil
		}
	}
}

// isInputError reports whether err is one of this package's input errors
// (and not, say, an error from the caller's fn).
func isInputError(err error) bool {
	var ie *inputError
	return errors.As(err, &ie)
}

// bundleRead is the state of one ReadBundle across its two passes.
type bundleRead struct {
	table     *refTable
	refs      []span // scratch for parseEntry
	scratch   []byte // scratch for the rewritten resource
	compact   []byte // scratch for the compacted resource
	noRequest int    // first entry without a request, or -1
	dup, prev int    // first entry writing a resource an earlier entry (prev) wrote, or -1
	dupRef    string
}

// check is the first pass over one entry: validate it and record its
// fullUrl, the resource it writes and its unresolved references.
func (b *bundleRead) check(i int, raw []byte) error {
	e, err := parseEntry(raw, b.refs[:0])
	if err != nil {
		return err
	}
	b.refs = e.refs
	if e.method == "" && b.noRequest < 0 {
		b.noRequest = i
	}
	if strings.HasPrefix(e.fullURL, urnUUID) && e.method != "DELETE" {
		if !b.table.addURN(e.fullURL, e.h.ResourceType, e.h.ID) {
			return invalidf("duplicate fullUrl %s", quoteID(e.fullURL))
		}
	}
	if prev := b.table.addSeen(e.h.ResourceType, e.h.ID, i); prev >= 0 && b.dup < 0 {
		b.dup, b.prev, b.dupRef = i, prev, e.h.ResourceType+"/"+e.h.ID
	}
	if e.resource != nil && e.method != "DELETE" {
		b.table.notePending(e.resource, e.refs, i)
	}
	return nil
}

// finish checks, after the first pass, what needs the whole Bundle.
func (b *bundleRead) finish(top bundleTop) error {
	needsRequest, ok := bundleTypes[top.typ]
	if !ok {
		return invalidf("bundle: missing type")
	}
	if needsRequest && b.noRequest >= 0 {
		return &EntryError{Index: b.noRequest, Err: invalidf("missing request in a %s Bundle", top.typ)}
	}
	if needsRequest && b.dup >= 0 {
		return &EntryError{Index: b.dup, Err: invalidf("%s is also written by entry %d", quoteID(b.dupRef), b.prev)}
	}
	if i, ref := b.table.unresolved(); i >= 0 {
		return &EntryError{Index: i, Err: invalidf("reference to unknown fullUrl %s", quoteID(ref))}
	}
	return nil
}

// entry is the second pass over one entry: build what fn receives.
func (b *bundleRead) entry(i int, raw []byte) (BundleEntry, error) {
	e, err := parseEntry(raw, b.refs[:0])
	if err != nil {
		return BundleEntry{}, err
	}
	b.refs = e.refs
	be := BundleEntry{Index: i, Method: e.method, URL: e.url, FullURL: e.fullURL, ResourceType: e.h.ResourceType, ID: e.h.ID}
	if e.resource == nil || e.method == "DELETE" {
		return be, nil
	}
	// The entry was validated by parseEntry: rewrite, then strip blanks.
	// Work in reused buffers; hand fn an exact-size copy it may keep.
	if b.scratch, err = b.table.rewrite(b.scratch[:0], e.resource, e.refs); err != nil {
		return BundleEntry{}, err
	}
	b.compact = appendCompact(b.compact[:0], b.scratch)
	if e.hasID {
		be.Resource = bytes.Clone(b.compact)
	} else {
		be.Resource = insertID(b.compact, e.h.ID)
	}
	if cap(b.scratch) > bigBuffer {
		b.scratch, b.compact = nil, nil
	}
	return be, nil
}
