package source

import (
	"net/http"
	"strings"

	"github.com/dtm-project/dtm"
)

// LookupRequest is the body of POST .../digest/lookup.
type LookupRequest struct {
	At        string   `json:"at,omitempty"` // FHIR instant; "" for the latest snapshot
	Resources []string `json:"resources"`    // "Type/id", at most MaxLookupResources
}

// LookupJSON is the response of POST .../digest/lookup: the state of each
// requested resource at the snapshot, in request order.
type LookupJSON struct {
	Practice        string       `json:"practice"`
	TransactionTime string       `json:"transactionTime"`
	Seq             int64        `json:"seq"`
	Resources       []LookupItem `json:"resources"`
}

// Lookup states.
const (
	LookupLive    = "live"    // the resource exists at the snapshot
	LookupDeleted = "deleted" // its latest change at the snapshot is a delete
	LookupAbsent  = "absent"  // it had no change by the snapshot
)

// LookupItem is one resource's state at the snapshot.
type LookupItem struct {
	Resource string `json:"resource"`
	State    string `json:"state"` // LookupLive, LookupDeleted or LookupAbsent
	Version  int64  `json:"version,omitempty"`
	Hash     string `json:"hash,omitempty"`
	Patient  string `json:"patient,omitempty"` // compartment patient id
}

// lookup answers the state at a snapshot of up to MaxLookupResources
// resources: what the target needs to tell a quarantined resource the
// source has since fixed or deleted from one still failing.
func (s *DigestServer) lookup(w http.ResponseWriter, r *http.Request) {
	ods := r.PathValue("ods")
	var req LookupRequest
	if err := decodeBody(r, MaxIssueBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Resources) > MaxLookupResources {
		s.fail(w, r, dtm.Errorf(dtm.ETooLarge, "at most %d resources per lookup", MaxLookupResources))
		return
	}
	snap, p, err := s.begin(r, ods, req.At)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r, p, ods, "digest lookup"); err != nil {
		s.fail(w, r, err)
		return
	}
	out := LookupJSON{Practice: ods, TransactionTime: instant(snap.Time), Seq: snap.Seq, Resources: []LookupItem{}}
	for _, res := range req.Resources {
		if !dtm.ValidIssueResource(res) {
			s.fail(w, r, dtm.Errorf(dtm.EInvalid, "resources must be Type/id, got %.80q", res))
			return
		}
		i := strings.LastIndexByte(res, '/')
		item := LookupItem{Resource: res, State: LookupAbsent}
		c, err := s.Store.State(r.Context(), ods, res[:i], res[i+1:], snap.Seq)
		switch {
		case dtm.ErrorCode(err) == dtm.ENotFound:
		case err != nil:
			s.fail(w, r, err)
			return
		case c.Op == dtm.OpDelete:
			item.State, item.Version = LookupDeleted, c.Version
		default:
			item.State, item.Version, item.Hash, item.Patient = LookupLive, c.Version, c.Hash, c.Patient
		}
		out.Resources = append(out.Resources, item)
	}
	writeJSON(w, http.StatusOK, out)
}
