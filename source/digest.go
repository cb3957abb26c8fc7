package source

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/reconcile"
)

// MaxLookupResources bounds one digest lookup request.
const MaxLookupResources = 10_000

// DigestServer serves practice digests for reconciliation (invariant 5,
// A3; docs/RECONCILIATION.md):
//
//	GET  /dtm/v1/practices/{ods}/digest?at=T              counts and the digest tree at T
//	GET  /dtm/v1/practices/{ods}/digest?at=T&patient=ID   one bucket's entries (patient= empty: no patient)
//	POST /dtm/v1/practices/{ods}/digest/lookup            the state at T of listed resources
//
// T is a FHIR instant, normally an export's transactionTime; without it the
// latest snapshot is used. Digests are computed for exactly the snapshot
// committed at or before T and cached (a few snapshots), so a target's
// drill-down requests do not recompute them; concurrent requests for the
// same snapshot share one computation. Readers of the practice may call it.
type DigestServer struct {
	Store  dtm.Store
	Audit  dtm.Audit    // records reads (dtm.AuditRead); nil records nothing
	Clock  dtm.Clock    // dtm.SystemClock{} when nil
	Logger *slog.Logger // slog.Default() when nil

	cache digestCache
}

// Routes registers the digest endpoints on mux.
func (s *DigestServer) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dtm/v1/practices/{ods}/digest", s.digest)
	mux.HandleFunc("POST /dtm/v1/practices/{ods}/digest/lookup", s.lookup)
}

// DigestJSON is the response of GET .../digest: the practice's counts per
// type and digest tree at the snapshot (see dtm.Digest).
type DigestJSON struct {
	Practice        string            `json:"practice"`
	TransactionTime string            `json:"transactionTime"` // commit time of the snapshot ("" for none)
	Seq             int64             `json:"seq"`             // the source journal's snapshot
	Counts          map[string]int64  `json:"counts"`
	Total           int64             `json:"total"`
	Excluded        int64             `json:"excluded"` // live resources outside Group scope
	Root            string            `json:"root"`
	Buckets         map[string]string `json:"buckets"` // patient id ("" for none) → digest
}

// BucketJSON is the response of GET .../digest?patient=ID: one bucket's
// entries in digest order.
type BucketJSON struct {
	Practice        string      `json:"practice"`
	TransactionTime string      `json:"transactionTime"`
	Seq             int64       `json:"seq"`
	Patient         string      `json:"patient"`
	Digest          string      `json:"digest"` // "" for an empty bucket
	Entries         []EntryJSON `json:"entries"`
}

// EntryJSON is one resource of a bucket.
type EntryJSON struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Hash    string `json:"hash"`
}

func (s *DigestServer) digest(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	snap, p, err := s.begin(r, ods, r.URL.Query().Get("at"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Has("patient") {
		if err := s.audit(r, p, ods, "read digest bucket"); err != nil {
			s.fail(w, r, err)
			return
		}
		s.bucket(w, r, ods, q.Get("patient"), snap)
		return
	}
	if err := s.audit(r, p, ods, "read digest"); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.compute(r, ods, snap)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d := t.Digest
	writeJSON(w, http.StatusOK, DigestJSON{
		Practice: ods, TransactionTime: instant(snap.Time), Seq: snap.Seq, Counts: d.Counts, Total: d.Total,
		Excluded: d.Excluded, Root: d.Root, Buckets: d.Buckets,
	})
}

// bucket answers a drill-down: the entries of one bucket at snap. The
// no-patient bucket comes from the cached digest (computing it if needed);
// a patient's from its compartment.
func (s *DigestServer) bucket(w http.ResponseWriter, r *http.Request, ods, patient string, snap dtm.Snapshot) {
	var es []dtm.DigestEntry
	var err error
	if patient == dtm.NoPatient {
		var t reconcile.Tree
		t, err = s.compute(r, ods, snap)
		es = t.NoPatient
	} else {
		es, err = reconcile.Bucket(r.Context(), s.Store, ods, patient, snap.Seq)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := BucketJSON{Practice: ods, TransactionTime: instant(snap.Time), Seq: snap.Seq, Patient: patient, Entries: []EntryJSON{}}
	if len(es) > 0 {
		out.Digest = reconcile.BucketDigest(es)
	}
	for _, e := range es {
		out.Entries = append(out.Entries, EntryJSON{Type: e.Type, ID: e.ID, Version: e.Version, Hash: e.Hash})
	}
	writeJSON(w, http.StatusOK, out)
}

// compute returns the practice's digest tree at snap: from the cache, or
// advanced from the latest cached tree of the practice, or computed.
func (s *DigestServer) compute(r *http.Request, ods string, snap dtm.Snapshot) (reconcile.Tree, error) {
	// The computation outlives the request that started it: a client that
	// gives up waiting (a large practice takes a while) and asks again
	// finds it running or done, rather than starting it over.
	ctx := context.WithoutCancel(r.Context())
	t, _, err := s.cache.get(r.Context(), digestKey{ods, snap.Seq}, func(base reconcile.Tree, ok bool) (reconcile.Tree, error) {
		start := time.Now()
		how := "computed"
		var t reconcile.Tree
		var err error
		if ok {
			how = "advanced"
			t, err = reconcile.Advance(ctx, s.Store, base, snap)
		} else {
			t, err = reconcile.ComputeTree(ctx, s.Store, ods, snap)
		}
		if err == nil {
			s.logger().Info("digest "+how, "practice", ods, "seq", snap.Seq, "resources", t.Digest.Total,
				"buckets", len(t.Digest.Buckets), "elapsed", time.Since(start).Round(time.Millisecond))
		}
		return t, err
	})
	return t, err
}

// begin authorises a reader of the practice and maps at (a FHIR instant,
// or "" for the latest snapshot) to a snapshot. It returns an EInvalid
// error for an unreadable or future instant.
func (s *DigestServer) begin(r *http.Request, ods, at string) (dtm.Snapshot, dtm.Principal, error) {
	p, _ := dtm.PrincipalFromContext(r.Context())
	if !p.CanRead(ods) && !p.Admin {
		return dtm.Snapshot{}, p, dtm.Errorf(dtm.EForbidden, "not authorised for practice %s", ods)
	}
	if _, err := s.Store.Practice(r.Context(), ods); err != nil {
		return dtm.Snapshot{}, p, err
	}
	if at == "" {
		snap, err := s.Store.Head(r.Context())
		return snap, p, err
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return dtm.Snapshot{}, p, dtm.Errorf(dtm.EInvalid, "at must be a FHIR instant, e.g. 2026-11-25T17:00:00.123456Z")
	}
	if t.After(s.now()) {
		return dtm.Snapshot{}, p, dtm.Errorf(dtm.EInvalid, "at is in the future")
	}
	snap, err := s.Store.SnapshotAt(r.Context(), t)
	return snap, p, err
}

func (s *DigestServer) audit(r *http.Request, p dtm.Principal, ods, detail string) error {
	return recordAudit(r, s.Audit, s.now(), p, ods, dtm.AuditRead, detail)
}

func (s *DigestServer) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

func (s *DigestServer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *DigestServer) fail(w http.ResponseWriter, r *http.Request, err error) {
	failWith(w, r, s.Logger, err)
}
