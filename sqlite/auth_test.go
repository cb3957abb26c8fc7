package sqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

func TestDB_Auth(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) dtm.AuthStore { return MustOpen(t) })
}

// TestDB_AuditAppendOnly checks that the database itself refuses to change
// or delete audit rows, whoever connects to it.
func TestDB_AuditAppendOnly(t *testing.T) {
	path := t.TempDir() + "/dtm.db"
	db := MustOpenPath(t, path, dtm.SystemClock{})
	ctx := context.Background()
	if err := db.Record(ctx, dtm.AuditEvent{Time: time.Now(), Client: "c", Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, stmt := range []string{`UPDATE audit_log SET outcome = 'denied'`, `DELETE FROM audit_log`} {
		if _, err := raw.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", stmt, err)
		}
	}
	events, err := db.AuditEvents(ctx, dtm.AuditQuery{})
	if err != nil || len(events) != 1 || events[0].Outcome != dtm.OutcomeSuccess {
		t.Errorf("audit log after tampering: %+v, %v", events, err)
	}
}

// TestDB_ReplaysSurviveRestart checks that a used jti is still refused
// after the database is closed and opened again.
func TestDB_ReplaysSurviveRestart(t *testing.T) {
	path := t.TempDir() + "/dtm.db"
	ctx := context.Background()
	now := time.Date(2026, 3, 27, 17, 0, 0, 0, time.UTC)
	db := MustOpenPath(t, path, dtm.SystemClock{})
	if err := db.UseJTI(ctx, "c", "j", now.Add(5*time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpenPath(t, path, dtm.SystemClock{})
	if err := db.UseJTI(ctx, "c", "j", now.Add(5*time.Minute), now.Add(time.Minute)); dtm.ErrorCode(err) != dtm.EConflict {
		t.Errorf("reused jti after restart: %v, want EConflict", err)
	}
}
