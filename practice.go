package dtm

import (
	"regexp"
	"time"
)

// Practice is one GP practice whose records a store holds.
type Practice struct {
	ODS         string // ODS organisation code, also the Group id
	Name        string
	CreatedAt   time.Time
	Watermark   time.Time // source system complete-as-of time (zero if never sent)
	LastUpdated time.Time // last commit that changed this practice (zero if none)
	Frozen      bool      // ingest refused (cutover freeze)
}

var odsPattern = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)

// ValidODS reports whether s looks like an ODS organisation code: 3 to 10
// upper-case letters and digits (practice codes are a letter and five digits).
func ValidODS(s string) bool { return odsPattern.MatchString(s) }

// Freshness states of a practice's DTM data (requirement S3).
const (
	FreshOK      = "ok"      // lag at most 6 hours
	FreshWarning = "warning" // lag over 6 hours
	FreshBreach  = "breach"  // lag over 12 hours
)

// Freshness thresholds (requirements S3 and S5).
const (
	FreshWarnAfter   = 6 * time.Hour
	FreshBreachAfter = 12 * time.Hour
)

// Freshness derives the lag between now and the later of the practice's
// watermark and last update, and its state. A practice that has never been
// updated is in breach.
func Freshness(p Practice, now time.Time) (lag time.Duration, state string) {
	asOf := p.Watermark
	if p.LastUpdated.After(asOf) {
		asOf = p.LastUpdated
	}
	if asOf.IsZero() {
		return 0, FreshBreach
	}
	lag = max(now.Sub(asOf), 0)
	switch {
	case lag > FreshBreachAfter:
		return lag, FreshBreach
	case lag > FreshWarnAfter:
		return lag, FreshWarning
	}
	return lag, FreshOK
}
