package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/dtm-project/dtm"
)

// RetrievalWindow is the rolling window of retrieval agreements (S7).
const RetrievalWindow = 24 * time.Hour

// AllowRetrieval decides whether client may start an export of practice at
// now, under its retrieval agreement (S7): by default one kick-off per
// practice per rolling 24 hours, more only up to the client's recorded
// AgreedRetrievalsPer24h. When allowed it records the kick-off in the audit
// log (a dtm.AuditKickoff event with outcome success: that row is what later
// calls count, so the caller must not record another successful kick-off) and
// returns 0, nil. Call it once per practice, after the request has been
// validated and just before the job is created.
//
// Beyond the agreement it records a refused kick-off and returns the time to
// wait and an ETooMany error whose message says what was agreed, by whom and
// when, and when the next retrieval is allowed; answer 429 with Retry-After
// (whole seconds, rounded up) and an OperationOutcome with that message.
// An unknown client gets an EForbidden error; store failures are returned
// wrapped. A client of "" (authentication off) is always allowed and is
// recorded.
//
// Concurrent calls, from any replica, never together exceed the agreement
// (dtm.AuditLog.RecordRetrieval is atomic).
func (s *Server) AllowRetrieval(ctx context.Context, client, practice string, now time.Time) (retryAfter time.Duration, err error) {
	limit := 1 << 30
	var c dtm.Client
	if client != "" {
		c, err = s.store.Client(ctx, client)
		if dtm.ErrorCode(err) == dtm.ENotFound {
			return 0, dtm.Errorf(dtm.EForbidden, "client %s is not registered", client)
		} else if err != nil {
			return 0, fmt.Errorf("retrieval agreement: %w", err)
		}
		limit = c.RetrievalLimit()
	}
	event := dtm.AuditEvent{
		Time:     now,
		Client:   client,
		Action:   dtm.AuditKickoff,
		Practice: practice,
		Outcome:  dtm.OutcomeSuccess,
		Detail:   "export kick-off",
		Remote:   remoteFromContext(ctx),
	}
	prior, ok, err := s.store.RecordRetrieval(ctx, event, limit, now.Add(-RetrievalWindow))
	if err != nil {
		return 0, fmt.Errorf("retrieval agreement: %w", err)
	}
	if ok {
		return 0, nil
	}
	next := nextRetrieval(prior, limit)
	retryAfter = max(next.Sub(now), time.Second)
	msg := fmt.Sprintf("client %s has made %d retrievals of practice %s in the last 24 h; %s; next retrieval allowed at %s",
		client, len(prior), practice, agreementText(c), next.UTC().Format(time.RFC3339))
	event.Outcome, event.Detail = dtm.OutcomeDenied, "over retrieval agreement: "+msg
	if err := s.Record(ctx, event); err != nil {
		return 0, err
	}
	return retryAfter, dtm.Errorf(dtm.ETooMany, "%s", msg)
}

// nextRetrieval returns when another retrieval becomes allowed: when enough
// of the prior kick-offs (ascending times, len(prior) >= limit) have left
// the window for fewer than limit to remain.
func nextRetrieval(prior []time.Time, limit int) time.Time {
	i := len(prior) - limit
	if i < 0 {
		i = 0
	}
	return prior[i].Add(RetrievalWindow)
}

// agreementText describes a client's retrieval agreement for messages.
func agreementText(c dtm.Client) string {
	n := c.RetrievalLimit()
	if c.AgreedRetrievalsPer24h <= 0 || c.AgreedAt.IsZero() {
		return fmt.Sprintf("the default is %d per 24 h (no other agreement is recorded)", n)
	}
	by := c.AgreedBy
	if by == "" {
		by = "an unnamed person"
	}
	return fmt.Sprintf("agreed %d per 24 h (agreed by %s on %s)", n, by, c.AgreedAt.UTC().Format("2006-01-02"))
}

// RetrievalStatus summarises a client's retrievals of one practice for the
// source's view of S7 and T2.
type RetrievalStatus struct {
	Client, Practice string
	Last             time.Time // last successful kick-off; zero if none
	Last24h          int       // successful kick-offs in the last 24 hours
	Limit            int       // agreed kick-offs per 24 hours
	// WeeklyMet is whether the client retrieved in the last 7 days (T2).
	WeeklyMet bool
}

// Retrievals returns the retrieval status of client for practice at now,
// from the audit log in st.
func Retrievals(ctx context.Context, st dtm.AuthStore, client, practice string, now time.Time) (RetrievalStatus, error) {
	rs := RetrievalStatus{Client: client, Practice: practice, Limit: dtm.DefaultRetrievalsPer24h}
	if c, err := st.Client(ctx, client); err == nil {
		rs.Limit = c.RetrievalLimit()
	} else if dtm.ErrorCode(err) != dtm.ENotFound {
		return rs, fmt.Errorf("retrievals: %w", err)
	}
	events, err := st.AuditEvents(ctx, dtm.AuditQuery{
		Client: client, Practice: practice, Action: dtm.AuditKickoff,
		Outcome: dtm.OutcomeSuccess, Since: now.Add(-7 * RetrievalWindow),
	})
	if err != nil {
		return rs, fmt.Errorf("retrievals: %w", err)
	}
	for _, e := range events {
		if e.Time.After(now) {
			continue
		}
		rs.WeeklyMet = true
		if e.Time.After(rs.Last) {
			rs.Last = e.Time
		}
		if e.Time.After(now.Add(-RetrievalWindow)) {
			rs.Last24h++
		}
	}
	if rs.Last.IsZero() {
		// Older than a week: find the last one at all.
		old, err := st.AuditEvents(ctx, dtm.AuditQuery{
			Client: client, Practice: practice, Action: dtm.AuditKickoff, Outcome: dtm.OutcomeSuccess,
		})
		if err != nil {
			return rs, fmt.Errorf("retrievals: %w", err)
		}
		if n := len(old); n > 0 {
			rs.Last = old[n-1].Time
		}
	}
	return rs, nil
}
