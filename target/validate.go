package target

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
	"github.com/dtm-project/dtm/ukcore"
)

// decoded is what one line of an export file becomes: writes to apply,
// quarantine records, and counts (Received, Deleted, Quarantined, Warnings,
// SourceErrors; Applied and Skipped are counted when the writes commit).
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
	version := metaVersion(line)
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
