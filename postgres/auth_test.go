package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/internal/pgtest"
	"github.com/dtm-project/dtm/storetest"
	"github.com/jackc/pgx/v5"
)

func TestDB_Auth(t *testing.T) {
	storetest.RunAuth(t, func(t *testing.T) dtm.AuthStore { return MustOpen(t) })
}

// TestDB_AuditAppendOnly checks that the database itself refuses to change,
// delete or truncate audit rows, whoever connects to it.
func TestDB_AuditAppendOnly(t *testing.T) {
	url := pgtest.Start(t)
	db := MustOpenURL(t, url, dtm.SystemClock{})
	ctx := context.Background()
	if err := db.Record(ctx, dtm.AuditEvent{Time: time.Now(), Client: "c", Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{`UPDATE audit_log SET outcome = 'denied'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := conn.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", stmt, err)
		}
	}
	events, err := db.AuditEvents(ctx, dtm.AuditQuery{})
	if err != nil || len(events) != 1 || events[0].Outcome != dtm.OutcomeSuccess {
		t.Errorf("audit log after tampering: %+v, %v", events, err)
	}
}
