package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
)

func TestServer_AllowRetrieval(t *testing.T) {
	ctx := context.Background()
	t.Run("OKDefaultOnePer24h", func(t *testing.T) {
		f := newFixture(t)
		now := f.clock.Now()
		if ra, err := f.server.AllowRetrieval(ctx, clientID, practiceA, now); err != nil || ra != 0 {
			t.Fatalf("first retrieval: %v, %v", ra, err)
		}
		// Another practice has its own allowance.
		if _, err := f.server.AllowRetrieval(ctx, clientID, practiceB, now); err != nil {
			t.Fatalf("another practice: %v", err)
		}
		later := now.Add(3 * time.Hour)
		ra, err := f.server.AllowRetrieval(ctx, clientID, practiceA, later)
		if dtm.ErrorCode(err) != dtm.ETooMany {
			t.Fatalf("second retrieval within 24 h: %v, want ETooMany", err)
		}
		if ra != 21*time.Hour {
			t.Errorf("retry after %s, want 21h", ra)
		}
		msg := dtm.ErrorMessage(err)
		for _, want := range []string{"default is 1 per 24 h", "next retrieval allowed at 2026-03-28T17:00:00Z", practiceA} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if _, err := f.server.AllowRetrieval(ctx, clientID, practiceA, now.Add(24*time.Hour)); err != nil {
			t.Errorf("after 24 h: %v", err)
		}
		denied, _ := f.store.AuditEvents(ctx, dtm.AuditQuery{Action: dtm.AuditKickoff, Outcome: dtm.OutcomeDenied})
		if len(denied) != 1 || denied[0].Client != clientID || denied[0].Practice != practiceA {
			t.Errorf("refused kick-offs audited: %+v", denied)
		}
	})
	t.Run("ErrBeyondAgreement", func(t *testing.T) {
		f := newFixture(t)
		c, _ := f.store.Client(ctx, clientID)
		c.AgreedRetrievalsPer24h, c.AgreedBy, c.AgreedAt = 3, "A Jones (SSS service desk)", epoch.Add(-48*time.Hour)
		if err := f.store.UpdateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now()
		for i := range 3 {
			if _, err := f.server.AllowRetrieval(ctx, clientID, practiceA, now.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Fatalf("retrieval %d of 3: %v", i+1, err)
			}
		}
		at := now.Add(5 * time.Hour)
		ra, err := f.server.AllowRetrieval(ctx, clientID, practiceA, at)
		if dtm.ErrorCode(err) != dtm.ETooMany || ra != 19*time.Hour {
			t.Fatalf("fourth: %v, %v; want ETooMany after 19h", ra, err)
		}
		msg := dtm.ErrorMessage(err)
		for _, want := range []string{"agreed 3 per 24 h", "agreed by A Jones (SSS service desk) on 2026-03-25", "made 3 retrievals"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		// When the first leaves the window, one more is allowed.
		if _, err := f.server.AllowRetrieval(ctx, clientID, practiceA, now.Add(24*time.Hour)); err != nil {
			t.Errorf("after the first left the window: %v", err)
		}
		st, err := auth.Retrievals(ctx, f.store, clientID, practiceA, now.Add(25*time.Hour))
		if err != nil || st.Last24h != 2 || !st.WeeklyMet || st.Limit != 3 || !st.Last.Equal(now.Add(24*time.Hour)) {
			t.Errorf("Retrievals = %+v, %v", st, err)
		}
		st, _ = auth.Retrievals(ctx, f.store, clientID, practiceA, now.Add(9*24*time.Hour))
		if st.WeeklyMet || st.Last24h != 0 || st.Last.IsZero() {
			t.Errorf("Retrievals after 9 days = %+v; want weekly minimum not met, last retrieval kept", st)
		}
	})
	t.Run("ErrUnknownClient", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.server.AllowRetrieval(ctx, "nobody", practiceA, f.clock.Now()); dtm.ErrorCode(err) != dtm.EForbidden {
			t.Errorf("unknown client: %v", err)
		}
	})
	t.Run("OKAuthOff", func(t *testing.T) {
		f := newFixture(t)
		for range 3 {
			if _, err := f.server.AllowRetrieval(ctx, "", practiceA, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
	})
}
