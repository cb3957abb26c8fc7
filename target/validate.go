package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/ukcore"
)

// decoded is what one line of an export file becomes: writes to apply,
// quarantine records, and counts (Received, Deleted, Quarantined, Warnings,
// SourceErrors, and Skipped for resources the store already held; Applied,
// and Skipped for the writes, are counted when the writes commit).
type decoded struct {
	writes     []dtm.Write
	quarantine []dtm.QuarantineRecord
	counts     dtm.PullCounts
}

// lineRef locates a line of a pull's file, for records and messages.
type lineRef struct {
	pull, practice string
	file           dtm.PullFile
	line           int64
}

func (l lineRef) where() string { return l.file.URL + "#" + strconv.FormatInt(l.line, 10) }

// decodeLine turns one line of a file into d, by the file's kind,
// validating resources with v (none when nil).
func (p *Puller) decodeLine(l lineRef, line []byte, v Validator, d *decoded) {
	switch l.file.Kind {
	case dtm.FileDeleted:
		p.decodeDeleted(l, line, d)
	case dtm.FileError:
		d.counts.SourceErrors++
		d.quarantine = append(d.quarantine, p.quarantine(l, dtm.QuarantineSourceError, "", "", 0, nil, line))
	default:
		p.decodeResource(l, line, v, d)
	}
}

// decodeResource validates one output resource: it becomes an upsert
// carrying the source's version (so that the stored JSON is the source's
// and versions never regress), or a quarantine record.
func (p *Puller) decodeResource(l lineRef, line []byte, v Validator, d *decoded) {
	d.counts.Received++
	h, err := fhir.ParseHeader(line)
	if err != nil {
		d.counts.Quarantined++
		oo := outcome("fatal", "structure", "unreadable resource: "+err.Error())
		d.quarantine = append(d.quarantine, p.quarantine(l, dtm.QuarantineUnreadable, "", "", 0, line, oo))
		return
	}
	version := headerVersion(line)
	if v != nil {
		r := v.Validate(line)
		if r.HasErrors() {
			d.counts.Quarantined++
			oo := r.OperationOutcome(h.ResourceType, h.ID)
			d.quarantine = append(d.quarantine, p.quarantine(l, dtm.QuarantineInvalid, h.ResourceType, h.ID, version, line, oo))
			return
		}
		for _, f := range r.Findings {
			if f.Severity == ukcore.SeverityWarning {
				d.counts.Warnings++
			}
		}
	}
	patient, _ := fhir.Compartment(h.ResourceType, line)
	d.writes = append(d.writes, dtm.Write{
		Type: h.ResourceType, ID: h.ID, Op: dtm.OpUpsert, JSON: line, Version: version,
		Patient: patient, Member: h.ResourceType == "Patient" && fhir.PatientActive(line),
	})
}

// heldLines reports, for each line of a chunk of an output file, whether
// the target store already holds that resource at the same version with the
// same content (fhir.ContentHash), as it does for what a re-pull brings
// again: a pull resumed after a crash re-reads the file it was applying, an
// export started again re-exports what was applied. Such a line is counted
// as skipped, as Apply would count it, without being validated again: the
// store keeps exactly that resource whatever validation would say, and it
// was validated when it was applied (unless that pull ran without a
// validator); its warnings are therefore missing from this pull's Warnings
// count (warnings are only counted; the findings reported to the source
// come from quarantine records, which a held resource never had). It
// returns nil when neither the chunk's first nor its last line is held, so
// that a chunk never applied costs at most two lookups.
func (p *Puller) heldLines(ctx context.Context, practice string, ch chunk) []bool {
	n := len(ch.lines)
	first := p.holds(ctx, practice, ch.lines[0])
	if !first && (n == 1 || !p.holds(ctx, practice, ch.lines[n-1])) {
		return nil
	}
	held := make([]bool, n)
	held[0] = first
	for i := 1; i < n; i++ {
		held[i] = p.holds(ctx, practice, ch.lines[i])
	}
	return held
}

// holds reports whether the target store holds the resource line at the
// version line carries (not 0) with the same content. Any failure to read
// either counts as not held: the line is then decoded as usual.
func (p *Puller) holds(ctx context.Context, practice string, line []byte) bool {
	h, err := fhir.ParseHeader(line)
	if err != nil {
		return false
	}
	v := headerVersion(line)
	if v == 0 {
		return false
	}
	c, err := p.cfg.Store.Get(ctx, practice, h.ResourceType, h.ID)
	if err != nil || c.Op != dtm.OpUpsert || c.Version != v || c.Hash == "" {
		return false
	}
	hash, err := fhir.ContentHash(line)
	return err == nil && hash == c.Hash
}

// metaVersion returns the resource's meta.versionId as a number, or 0 when
// it has none (the store then assigns one). It reads top-level members only
// until it meets meta, which FHIR servers write near the start.
func metaVersion(resource []byte) int64 {
	dec := json.NewDecoder(bytes.NewReader(resource))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0
		}
		if key != "meta" {
			if skipValue(dec) != nil {
				return 0
			}
			continue
		}
		var m struct {
			VersionID string `json:"versionId"`
		}
		if dec.Decode(&m) != nil {
			return 0
		}
		v, err := strconv.ParseInt(m.VersionID, 10, 64)
		if err != nil || v < 0 {
			return 0
		}
		return v
	}
	return 0
}

// headerVersion is metaVersion for a resource that fhir.ParseHeader
// accepted (one valid JSON object, no duplicate top-level keys): it finds
// meta, and in it versionId, by stepping over the members before them
// without decoding them, and leaves to encoding/json only the metas whose
// keys it would match loosely (case-insensitively) or that repeat
// versionId. metaVersion was a twentieth of a validated line's cost.
func headerVersion(resource []byte) int64 {
	meta := topLevelMember(resource, "meta")
	if len(meta) == 0 || meta[0] != '{' {
		return 0 // absent, null, or not an object (which encoding/json refuses)
	}
	id, ok := plainVersionID(meta)
	if !ok {
		var m struct {
			VersionID string `json:"versionId"`
		}
		if json.Unmarshal(meta, &m) != nil {
			return 0
		}
		id = m.VersionID
	}
	v, err := strconv.ParseInt(id, 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// plainVersionID returns meta's versionId when no key could match it
// loosely: every key is ASCII without escapes, at most one equals
// "versionId" ignoring case, it is spelt exactly so, and its value is a
// string without escapes. Otherwise ok is false.
func plainVersionID(meta []byte) (id string, ok bool) {
	ok = true
	n := 0
	members(meta, func(key, value []byte) bool {
		for _, c := range key {
			if c == '\\' || c >= utf8.RuneSelf {
				ok = false
				return false
			}
		}
		if !strings.EqualFold(string(key), "versionId") {
			return true
		}
		n++
		if n > 1 || string(key) != "versionId" || len(value) < 2 || value[0] != '"' || bytes.IndexByte(value, '\\') >= 0 {
			ok = false
			return false
		}
		id = string(value[1 : len(value)-1])
		return true
	})
	return id, ok
}

// topLevelMember returns the raw value of the top-level member name of
// obj, which must be one valid JSON object without duplicate keys, or nil
// when it has none. Keys are compared decoded, as encoding/json does.
func topLevelMember(obj []byte, name string) []byte {
	var found []byte
	members(obj, func(key, value []byte) bool {
		if bytes.IndexByte(key, '\\') >= 0 {
			var k string
			if json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k) != nil {
				return true
			}
			key = []byte(k)
		}
		if string(key) == name {
			found = value
			return false
		}
		return true
	})
	return found
}

// members calls fn with the raw key (quotes removed, escapes kept) and the
// raw value of each member of obj, one valid JSON object, in order, until
// fn returns false. Values are stepped over, not decoded.
func members(obj []byte, fn func(key, value []byte) bool) {
	i := bytes.IndexByte(obj, '{') + 1
	for i > 0 && i < len(obj) {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return // '}' (or not the JSON promised)
		}
		kend := skipJSON(obj, i)
		if kend < i+2 {
			return
		}
		key := obj[i+1 : kend-1]
		i = skipSpace(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		start := skipSpace(obj, i+1)
		end := skipJSON(obj, start)
		if start >= end || !fn(key, obj[start:end]) {
			return
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// skipSpace returns the index of the first byte at or after i in b that is
// not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipJSON returns the index just after the JSON value starting at b[i],
// which must be valid JSON; len(b) at the latest.
func skipJSON(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipJSON(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return len(b)
}

// skipValue reads past the next JSON value of dec without keeping it.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// deletedBundle is a line of a deleted file: a transaction Bundle of
// DELETE entries (Bulk Data IG v2).
type deletedBundle struct {
	ResourceType string `json:"resourceType"`
	Entry        []struct {
		Request struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
	} `json:"entry"`
}

// decodeDeleted turns a deleted Bundle into delete writes. An unreadable
// Bundle or entry is quarantined.
func (p *Puller) decodeDeleted(l lineRef, line []byte, d *decoded) {
	var b deletedBundle
	if err := json.Unmarshal(line, &b); err != nil || b.ResourceType != "Bundle" {
		d.counts.Received++
		d.counts.Quarantined++
		oo := outcome("fatal", "structure", "deleted file line is not a Bundle")
		d.quarantine = append(d.quarantine, p.quarantine(l, dtm.QuarantineUnreadable, "", "", 0, line, oo))
		return
	}
	for i, e := range b.Entry {
		d.counts.Received++
		typ, id, ok := deleteTarget(e.Request.URL)
		if !ok || !strings.EqualFold(e.Request.Method, "DELETE") {
			d.counts.Quarantined++
			oo := outcome("error", "structure", fmt.Sprintf("deleted Bundle entry %d is not a DELETE of Type/id", i))
			d.quarantine = append(d.quarantine, p.quarantine(l, dtm.QuarantineUnreadable, "", "", 0, line, oo))
			continue
		}
		d.counts.Deleted++
		d.writes = append(d.writes, dtm.Write{Type: typ, ID: id, Op: dtm.OpDelete})
	}
}

// deleteTarget reads "Type/id" from a DELETE entry's URL, which may be
// relative or absolute and may carry /_history/{v}.
func deleteTarget(u string) (typ, id string, ok bool) {
	if pu, err := url.Parse(u); err == nil {
		u = pu.Path
	}
	parts := strings.Split(strings.Trim(u, "/"), "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	if len(parts) < 2 {
		return "", "", false
	}
	typ, id = parts[len(parts)-2], parts[len(parts)-1]
	if fhir.CheckType(typ) != nil || fhir.CheckID(id) != nil {
		return "", "", false
	}
	return typ, id, true
}

// quarantine builds a record for the line at l.
func (p *Puller) quarantine(l lineRef, reason, typ, id string, version int64, line, oo []byte) dtm.QuarantineRecord {
	q := dtm.QuarantineRecord{
		Pull: l.pull, Practice: l.practice, Reason: reason, Type: typ, ID: id, Version: version,
		JSON: line, Outcome: oo, At: p.cfg.Clock.Now(),
	}
	if typ == "" || id == "" {
		q.Where = l.where()
	}
	return q
}

// outcome returns an OperationOutcome with one issue. diagnostics must not
// hold patient data.
func outcome(severity, code, diagnostics string) []byte {
	return fhir.OperationOutcome(fhir.OutcomeIssue{Severity: severity, Code: code, Diagnostics: diagnostics})
}
