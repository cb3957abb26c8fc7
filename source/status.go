package source

import (
	"context"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// Status is a practice's freshness and contents, as served at
// /dtm/v1/practices/{ods}/status (requirements S3, S4 and T3).
type Status struct {
	Practice string `json:"practice"`
	Name     string `json:"name,omitempty"`
	// LastUpdated is when the DTM last committed a change for the practice.
	LastUpdated string `json:"lastUpdated,omitempty"`
	// SourceWatermark is the source system's "complete as of" time: the DTM
	// holds every change made in the source up to it.
	SourceWatermark string `json:"sourceWatermark,omitempty"`
	// LagSeconds is how far the DTM is behind now, from the later of the two.
	LagSeconds float64 `json:"lagSeconds"`
	// Freshness is ok (lag ≤ 6 h), warning (> 6 h) or breach (> 12 h).
	Freshness string `json:"freshness"`
	CheckedAt string `json:"checkedAt"`
	Frozen    bool   `json:"frozen"`
	// TransactionTime is the commit time of the store's latest snapshot.
	TransactionTime string           `json:"transactionTime,omitempty"`
	Counts          map[string]int64 `json:"counts"`
	Total           int64            `json:"total"`
}

// PracticeStatus computes a practice's Status at now. It returns an
// ENotFound error for an unknown practice.
func PracticeStatus(ctx context.Context, store dtm.Store, ods string, now time.Time) (Status, error) {
	p, err := store.Practice(ctx, ods)
	if err != nil {
		return Status{}, err
	}
	head, err := store.Head(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	counts, err := store.Counts(ctx, ods, head.Seq)
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	lag, state := dtm.Freshness(p, now)
	st := Status{
		Practice:        p.ODS,
		Name:            p.Name,
		LastUpdated:     instant(p.LastUpdated),
		SourceWatermark: instant(p.Watermark),
		LagSeconds:      lag.Seconds(),
		Freshness:       state,
		CheckedAt:       fhir.FormatInstant(now),
		Frozen:          p.Frozen,
		TransactionTime: instant(head.Time),
		Counts:          counts,
	}
	for _, n := range counts {
		st.Total += n
	}
	return st, nil
}

// instant formats t as a FHIR instant, or "" for the zero time.
func instant(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fhir.FormatInstant(t)
}
