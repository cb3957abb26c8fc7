package target

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// This file is the Client's side of the source's digest endpoints
// (/dtm/v1/practices/{ods}/digest; package source, DigestServer).

// digestJSON mirrors source.DigestJSON.
type digestJSON struct {
	Practice        string
	TransactionTime string
	Seq             int64
	Counts          map[string]int64
	Total           int64
	Excluded        int64
	Root            string
	Buckets         map[string]string
}

// digestURL returns the practice's digest URL with the path elements
// appended.
func (c *Client) digestURL(practice string, elem ...string) *url.URL {
	return c.root.JoinPath(append([]string{"dtm", "v1", "practices", url.PathEscape(practice), "digest"}, elem...)...)
}

// Digest returns the source's digest of the practice at the snapshot
// committed at or before at (the latest when at is zero). Its Snapshot.Seq
// is the source journal's, and Snapshot.Time the snapshot's commit time.
// A source without the endpoint answers ENotFound.
func (c *Client) Digest(ctx context.Context, practice string, at time.Time) (dtm.Digest, error) {
	if !dtm.ValidODS(practice) {
		return dtm.Digest{}, dtm.Errorf(dtm.EInvalid, "digest: invalid ODS code")
	}
	u := c.digestURL(practice)
	if !at.IsZero() {
		u.RawQuery = url.Values{"at": {fhir.FormatInstant(at)}}.Encode()
	}
	var j digestJSON
	if err := c.getJSON(ctx, "source digest", u.String(), true, &j); err != nil {
		return dtm.Digest{}, err
	}
	t, err := parseInstant(j.TransactionTime)
	if err != nil {
		return dtm.Digest{}, fmt.Errorf("source digest: %w", err)
	}
	d := dtm.Digest{Practice: j.Practice, Snapshot: dtm.Snapshot{Seq: j.Seq, Time: t}, Counts: j.Counts,
		Total: j.Total, Excluded: j.Excluded, Root: j.Root, Buckets: j.Buckets}
	if d.Counts == nil {
		d.Counts = map[string]int64{}
	}
	if d.Buckets == nil {
		d.Buckets = map[string]string{}
	}
	return d, nil
}

// DigestBucket returns the entries of one bucket of the source's digest at
// at (patient dtm.NoPatient for the resources in no compartment).
func (c *Client) DigestBucket(ctx context.Context, practice, patient string, at time.Time) ([]dtm.DigestEntry, error) {
	u := c.digestURL(practice)
	q := url.Values{"patient": {patient}}
	if !at.IsZero() {
		q.Set("at", fhir.FormatInstant(at))
	}
	u.RawQuery = q.Encode()
	var j struct {
		Entries []struct {
			Type, ID string
			Version  int64
			Hash     string
		}
	}
	if err := c.getJSON(ctx, "source digest bucket", u.String(), true, &j); err != nil {
		return nil, err
	}
	out := make([]dtm.DigestEntry, len(j.Entries))
	for i, e := range j.Entries {
		out[i] = dtm.DigestEntry{Type: e.Type, ID: e.ID, Version: e.Version, Hash: e.Hash}
	}
	return out, nil
}

// SourceState is a resource's state at the source at a snapshot.
type SourceState struct {
	Resource string // "Type/id"
	State    string // "live", "deleted" or "absent"
	Version  int64
	Hash     string
	Patient  string
}

// lookupBatch is how many resources one lookup request carries (the
// source's limit, source.MaxLookupResources).
const lookupBatch = 10_000

// LookupResources returns the source's state of each resource ("Type/id")
// at the snapshot committed at or before at, in order, asking in batches.
func (c *Client) LookupResources(ctx context.Context, practice string, at time.Time, resources []string) ([]SourceState, error) {
	var out []SourceState
	for start := 0; start < len(resources); start += lookupBatch {
		body := map[string]any{"resources": resources[start:min(start+lookupBatch, len(resources))]}
		if !at.IsZero() {
			body["at"] = fhir.FormatInstant(at)
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("digest lookup: %w", err)
		}
		var j struct {
			Resources []SourceState
		}
		if err := c.sendJSON(ctx, "digest lookup", http.MethodPost, c.digestURL(practice, "lookup").String(), b, http.StatusOK, &j); err != nil {
			return nil, err
		}
		out = append(out, j.Resources...)
	}
	return out, nil
}
