package target

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// attachment is one DocumentReference.content[].attachment to verify.
type attachment struct {
	doc     string // DocumentReference id
	version int64
	patient string
	index   int
	URL     string `json:"url"`
	Data    []byte `json:"data"`
	Size    *int64 `json:"size"`
	Hash    string `json:"hash"`
	CType   string `json:"contentType"`
}

func (a attachment) where() string { return fmt.Sprintf("content[%d].attachment", a.index) }

// attachments verifies the attachments of every DocumentReference this
// pull applied. An attachment held inline, or in a Binary the target store
// already has (usually because the export carried it), is checked against
// its size and hash; a Binary the store lacks is fetched from the source
// (resuming with Range), checked, and stored as a Binary resource. A
// missing or mismatched attachment is quarantined with the
// DocumentReference's id, never skipped silently. Verification is
// idempotent, so a restarted pull simply repeats it.
func (p *Puller) attachments(ctx context.Context, rec *dtm.PullRecord) error {
	files, err := p.cfg.State.Files(ctx, rec.ID)
	if err != nil {
		return fmt.Errorf("list files: %w", err)
	}
	var todo []attachment
	for _, f := range files {
		if f.Kind != dtm.FileOutput || f.Type != "DocumentReference" {
			continue
		}
		as, err := p.documentAttachments(ctx, rec, f.Path)
		if err != nil {
			return fmt.Errorf("read attachments: %w", err)
		}
		todo = append(todo, as...)
	}
	p.cfg.Progress.Start("attachments", int64(len(todo)))
	defer p.cfg.Progress.Done("attachments")
	var ok, bad atomic.Int64
	err = forEach(ctx, len(todo), p.cfg.Parallel, func(ctx context.Context, i int) error {
		problem, err := p.verifyAttachment(ctx, rec, todo[i])
		if err != nil {
			return err
		}
		if problem != nil {
			bad.Add(1)
			if err := p.cfg.State.Quarantine(ctx, []dtm.QuarantineRecord{*problem}); err != nil {
				return fmt.Errorf("quarantine: %w", err)
			}
		} else {
			ok.Add(1)
		}
		p.cfg.Progress.Add("attachments", "DocumentReference", 1)
		return nil
	})
	if err != nil {
		return err
	}
	rec.Counts.Attachments, rec.Counts.AttachmentProblems = ok.Load(), bad.Load()
	return p.save(ctx, rec)
}

// documentAttachments reads the attachments of the DocumentReferences in
// the file that the target store holds at the version received (those
// quarantined or superseded are not its to verify).
func (p *Puller) documentAttachments(ctx context.Context, rec *dtm.PullRecord, path string) ([]attachment, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	br := bufio.NewReaderSize(fh, 1<<20)
	var out []attachment
	for {
		line, rerr := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			as, err := p.lineAttachments(ctx, rec, line)
			if err != nil {
				return nil, err
			}
			out = append(out, as...)
		}
		if errors.Is(rerr, io.EOF) {
			return out, nil
		} else if rerr != nil {
			return nil, rerr
		}
	}
}

// lineAttachments returns the attachments of one DocumentReference line.
func (p *Puller) lineAttachments(ctx context.Context, rec *dtm.PullRecord, line []byte) ([]attachment, error) {
	var doc struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Content      []struct {
			Attachment attachment `json:"attachment"`
		} `json:"content"`
	}
	if json.Unmarshal(line, &doc) != nil || doc.ResourceType != "DocumentReference" {
		return nil, nil // quarantined as unreadable when applied
	}
	cur, err := p.cfg.Store.Get(ctx, rec.Practice, "DocumentReference", doc.ID)
	if dtm.ErrorCode(err) == dtm.ENotFound {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get DocumentReference: %w", err)
	}
	if v := metaVersion(line); v != 0 && cur.Version != v {
		return nil, nil
	}
	var out []attachment
	for i, c := range doc.Content {
		a := c.Attachment
		a.doc, a.version, a.patient, a.index = doc.ID, cur.Version, cur.Patient, i
		out = append(out, a)
	}
	return out, nil
}

// verifyAttachment checks one attachment, fetching its Binary when the
// store lacks it. It returns a quarantine record describing the problem,
// or nil when the attachment is present and intact; the error is for
// failures of the target itself (store, disk, cancellation).
func (p *Puller) verifyAttachment(ctx context.Context, rec *dtm.PullRecord, a attachment) (*dtm.QuarantineRecord, error) {
	problem := func(code, msg string) *dtm.QuarantineRecord {
		return &dtm.QuarantineRecord{
			Pull: rec.ID, Practice: rec.Practice, Reason: dtm.QuarantineAttachment,
			Type: "DocumentReference", ID: a.doc, Version: a.version, Where: a.where(),
			Outcome: outcome("error", code, a.where()+": "+msg), At: p.cfg.Clock.Now(),
		}
	}
	if a.Data != nil {
		if msg := checkContent(a, a.Data); msg != "" {
			return problem("value", msg), nil
		}
		return nil, nil
	}
	if a.URL == "" {
		return problem("required", "attachment has neither data nor url"), nil
	}
	id, ok := p.binaryID(a.URL)
	if !ok {
		return problem("not-supported", "attachment url is not a Binary of the source; not fetched"), nil
	}
	data, msg, err := p.binaryContent(ctx, rec, a, id)
	if err != nil || msg != "" {
		if err == nil {
			return problem("not-found", msg), nil
		}
		return nil, err
	}
	if msg := checkContent(a, data); msg != "" {
		return problem("value", msg), nil
	}
	return nil, nil
}

// checkContent compares content with the attachment's size and base64
// SHA-1 hash, returning what differs ("" when both match or are absent).
func checkContent(a attachment, content []byte) string {
	if a.Size != nil && *a.Size != int64(len(content)) {
		return fmt.Sprintf("size is %d bytes, attachment.size says %d", len(content), *a.Size)
	}
	if a.Hash != "" {
		sum := sha1.Sum(content)
		if base64.StdEncoding.EncodeToString(sum[:]) != a.Hash {
			return "SHA-1 of the content differs from attachment.hash"
		}
	}
	return ""
}

// binaryID returns the Binary id an attachment URL names: "Binary/{id}",
// or an absolute URL of the source's FHIR base ending in Binary/{id}.
func (p *Puller) binaryID(ref string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "Binary/")
	if !ok {
		base := p.cfg.Client.FHIRBase() + "/Binary/"
		if rest, ok = strings.CutPrefix(ref, base); !ok {
			return "", false
		}
	}
	return rest, fhir.CheckID(rest) == nil
}

// binaryContent returns the content of Binary id: from the target store,
// or fetched from the source and stored. msg describes a Binary that is
// missing at the source too.
func (p *Puller) binaryContent(ctx context.Context, rec *dtm.PullRecord, a attachment, id string) (data []byte, msg string, err error) {
	c, err := p.cfg.Store.Get(ctx, rec.Practice, "Binary", id)
	if err == nil {
		var bin struct {
			Data []byte `json:"data"`
		}
		if json.Unmarshal(c.JSON, &bin) != nil {
			return nil, "the stored Binary is unreadable", nil
		}
		return bin.Data, "", nil
	} else if dtm.ErrorCode(err) != dtm.ENotFound {
		return nil, "", fmt.Errorf("get Binary: %w", err)
	}
	return p.fetchBinary(ctx, rec, a, id)
}

// fetchBinary downloads Binary id's content from the source and, when it
// matches the attachment, stores it as a Binary resource in the patient's
// compartment.
func (p *Puller) fetchBinary(ctx context.Context, rec *dtm.PullRecord, a attachment, id string) ([]byte, string, error) {
	u := p.cfg.Client.FHIRBase() + "/Binary/" + url.PathEscape(id)
	path := filepath.Join(p.workDir(rec.ID), "Binary-"+id)
	defer os.Remove(path)
	r, err := p.cfg.Client.FetchBinary(ctx, u, true, path, p.cfg.MaxAttachmentBytes)
	switch code := dtm.ErrorCode(err); {
	case code == dtm.ENotFound || code == dtm.EGone:
		return nil, "the Binary is missing at the source", nil
	case code == dtm.ETooLarge:
		return nil, fmt.Sprintf("the Binary exceeds %d bytes", p.cfg.MaxAttachmentBytes), nil
	case err != nil:
		return nil, "", err
	}
	data, err := os.ReadFile(r.Path)
	if err != nil {
		return nil, "", fmt.Errorf("read fetched binary: %w", err)
	}
	if checkContent(a, data) != "" {
		return data, "", nil // reported by the caller; not stored
	}
	ctype := r.ContentType
	if ctype == "" {
		ctype = a.CType
	}
	res, _ := json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		ContentType  string `json:"contentType"`
		Data         []byte `json:"data"`
	}{"Binary", id, ctype, data})
	w := dtm.Write{Type: "Binary", ID: id, Op: dtm.OpUpsert, JSON: res, Patient: a.patient}
	if _, err := p.cfg.Store.Apply(ctx, rec.Practice, []dtm.Write{w}); err != nil {
		return nil, "", fmt.Errorf("store fetched Binary: %w", err)
	}
	p.log.Info("attachment fetched from the source", "pull", rec.ID, "bytes", r.Size, "resumed", r.Resumed)
	return data, "", nil
}
