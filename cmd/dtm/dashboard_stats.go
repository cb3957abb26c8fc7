package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/web"
)

// journalStats reads a store's journal incrementally for the dashboard:
// per practice, changes per London day and the commit times, over the
// last dashChangesDays. Each read starts where the last one stopped and
// reads at most dashScanPerFetch rows, so an update costs what changed
// since the previous one. Changes reports a resource once per read, at
// its latest version, so a resource changed several times between two
// reads counts once (an exact count needs a store method that counts
// journal rows per day). It is safe for concurrent use.
type journalStats struct {
	j  dtm.Journal
	mu sync.Mutex
	by map[string]*practiceStats
}

// practiceStats is what journalStats knows of one practice.
type practiceStats struct {
	seq     int64            // the journal is read up to here
	days    map[string]int64 // London date → changes
	commits []time.Time      // ascending; at most one a minute (the latest)
	marks   []asOfEvent      // source watermarks, when first seen
}

// asOfEvent is an instant from which the data is known complete as of
// asOf: a commit, a watermark first seen, a pull applied.
type asOfEvent struct{ at, asOf time.Time }

var errEnough = errors.New("read enough for now")

func newJournalStats(j dtm.Journal) *journalStats {
	return &journalStats{j: j, by: map[string]*practiceStats{}}
}

// read brings the practice's figures up to head (or dashScanPerFetch rows
// towards it) and returns a copy.
func (s *journalStats) read(ctx context.Context, p dtm.Practice, head dtm.Snapshot, now time.Time) (practiceStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.by[p.ODS]
	if ps == nil {
		from, err := s.j.SnapshotAt(ctx, now.AddDate(0, 0, -dashChangesDays))
		if err != nil {
			return practiceStats{}, fmt.Errorf("dashboard: journal: %w", err)
		}
		ps = &practiceStats{seq: from.Seq, days: map[string]int64{}}
		s.by[p.ODS] = ps
	}
	if !p.Watermark.IsZero() && (len(ps.marks) == 0 || p.Watermark.After(ps.marks[len(ps.marks)-1].asOf)) {
		ps.marks = append(ps.marks, asOfEvent{at: now, asOf: p.Watermark})
	}
	if head.Seq > ps.seq {
		n, last := 0, ps.seq
		err := s.j.Changes(ctx, dtm.ChangeQuery{Practice: p.ODS, Since: ps.seq, Until: head.Seq}, func(c dtm.Change) error {
			ps.add(c.CommitTime)
			n, last = n+1, c.Seq
			if n >= dashScanPerFetch {
				return errEnough
			}
			return nil
		})
		switch {
		case errors.Is(err, errEnough):
			ps.seq = last
		case err != nil:
			return practiceStats{}, fmt.Errorf("dashboard: journal: %w", err)
		default:
			ps.seq = head.Seq
		}
	}
	ps.prune(now)
	return practiceStats{seq: ps.seq, days: maps.Clone(ps.days), commits: slices.Clone(ps.commits), marks: slices.Clone(ps.marks)}, nil
}

// add counts one change committed at t.
func (ps *practiceStats) add(t time.Time) {
	ps.days[t.In(dtm.London()).Format(time.DateOnly)]++
	if n := len(ps.commits); n > 0 && !t.Before(ps.commits[n-1]) && t.Truncate(time.Minute).Equal(ps.commits[n-1].Truncate(time.Minute)) {
		ps.commits[n-1] = t // Changes reads in commit order
		return
	}
	ps.commits = append(ps.commits, t)
}

// prune forgets what is older than the windows.
func (ps *practiceStats) prune(now time.Time) {
	oldest := now.AddDate(0, 0, -dashChangesDays).In(dtm.London()).Format(time.DateOnly)
	maps.DeleteFunc(ps.days, func(day string, _ int64) bool { return day < oldest })
	cut := now.Add(-dashLagWindow - time.Hour)
	i, _ := slices.BinarySearchFunc(ps.commits, cut, func(a, b time.Time) int { return a.Compare(b) })
	ps.commits = slices.Delete(ps.commits, 0, max(i-1, 0)) // keep the last one before the window
	if n := len(ps.marks); n > 1 && ps.marks[n-2].at.Before(cut) {
		ps.marks = slices.Delete(ps.marks, 0, n-1)
	}
}

// changes are the changes per day of the last dashChangesDays, today last.
func (ps practiceStats) changes(now time.Time) *web.ChangesView {
	v := &web.ChangesView{}
	today := now.In(dtm.London())
	for i := dashChangesDays - 1; i >= 0; i-- {
		d := today.AddDate(0, 0, -i)
		v.Days = append(v.Days, web.DayCount{Day: d, Count: ps.days[d.Format(time.DateOnly)]})
	}
	return v
}

// asOfEvents are the commits and watermarks in time order.
func (ps practiceStats) asOfEvents() []asOfEvent {
	evs := slices.Clone(ps.marks)
	for _, c := range ps.commits {
		evs = append(evs, asOfEvent{at: c, asOf: c})
	}
	slices.SortStableFunc(evs, func(a, b asOfEvent) int { return a.at.Compare(b.at) })
	return evs
}

// lagHistory turns asOf events (in time order) into the lag chart's
// points over the last dashLagWindow, or since the first event: at most
// dashLagPoints, each the highest lag in the interval it ends (the lag
// grows between events, so its peaks are just before them). It starts at
// the first event; before that the lag is unknown.
func lagHistory(events []asOfEvent, now time.Time) []web.Point {
	if len(events) == 0 {
		return nil
	}
	from := laterOf(now.Add(-dashLagWindow), events[0].at)
	if !now.After(from) {
		return nil
	}
	step := max((now.Sub(from)+dashLagPoints-1)/dashLagPoints, time.Minute)
	var asOf time.Time
	i := 0
	for ; i < len(events) && !events[i].at.After(from); i++ { // the state at `from`
		asOf = laterOf(asOf, events[i].asOf)
	}
	var pts []web.Point
	for end := from.Add(step); ; end = end.Add(step) {
		end = earlierOf(end, now)
		var peak time.Duration
		for ; i < len(events) && !events[i].at.After(end); i++ {
			if !asOf.IsZero() {
				peak = max(peak, events[i].at.Sub(asOf))
			}
			asOf = laterOf(asOf, events[i].asOf)
		}
		if !asOf.IsZero() {
			peak = max(peak, end.Sub(asOf))
			pts = append(pts, web.Point{At: end, Value: peak.Hours()})
		}
		if !end.Before(now) {
			return pts
		}
	}
}

// earlierOf returns the earlier of a and b.
func earlierOf(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// findingsCache counts the target's quarantine by rule. Records of a
// finished pull never change, so each is read once; those of a pull in
// progress are read again on every update. It is safe for concurrent use.
type findingsCache struct {
	state dtm.TargetState
	mu    sync.Mutex
	pulls map[string]map[ruleKey]int64 // finished pull → counts
}

// ruleKey is a (rule, quarantine reason) pair.
type ruleKey struct{ rule, reason string }

func newFindingsCache(state dtm.TargetState) *findingsCache {
	return &findingsCache{state: state, pulls: map[string]map[ruleKey]int64{}}
}

// view counts the practice's quarantine over pulls (every pull kept of
// the practice), with the validation warnings on applied resources.
func (f *findingsCache) view(ctx context.Context, ods string, pulls []dtm.PullRecord) (*web.FindingsView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	total := map[ruleKey]int64{}
	v := &web.FindingsView{}
	for _, p := range pulls {
		v.Warnings += p.Counts.Warnings
		counts, ok := f.pulls[p.ID]
		if !ok {
			counts = map[ruleKey]int64{}
			err := f.state.Quarantined(ctx, ods, p.ID, func(q dtm.QuarantineRecord) error {
				for _, r := range outcomeRules(q.Outcome) {
					counts[ruleKey{r, q.Reason}]++
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("dashboard: quarantine: %w", err)
			}
			if p.Status == dtm.PullComplete || p.Status == dtm.PullFailed || p.Status == dtm.PullAbandoned {
				f.pulls[p.ID] = counts
			}
		}
		for k, n := range counts {
			total[k] += n
		}
		v.Quarantined += p.Counts.Quarantined
	}
	for k, n := range total {
		v.Rules = append(v.Rules, web.RuleCount{Rule: k.rule, Reason: k.reason, Count: n})
	}
	slices.SortFunc(v.Rules, func(a, b web.RuleCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Rule, b.Rule), strings.Compare(a.Reason, b.Reason))
	})
	return v, nil
}

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,99}$`)

// outcomeRules returns the distinct rule ids of an OperationOutcome whose
// issues' diagnostics read "rule: message" (package ukcore), or [""] when
// it names none. It reads no patient data: only the rule prefix.
func outcomeRules(oo []byte) []string {
	var o struct {
		Issue []struct {
			Severity    string `json:"severity"`
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(oo, &o) != nil {
		return []string{""}
	}
	var rules []string
	for _, i := range o.Issue {
		if i.Severity != "error" && i.Severity != "fatal" {
			continue // a warning did not quarantine the resource
		}
		if r, _, ok := strings.Cut(i.Diagnostics, ": "); ok && ruleID.MatchString(r) && !slices.Contains(rules, r) {
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return []string{""}
	}
	return rules
}
