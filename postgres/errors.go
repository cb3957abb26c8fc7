package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dtm-project/dtm"
)

// SQLSTATEs of a full disk and of a write in a read-only transaction (a
// read-only database, or a standby after a failover).
const (
	sqlStateDiskFull = "53100"
	sqlStateReadOnly = "25006"
)

// storageError gives a write that failed because the server's disk is
// full, or the database is read-only, a dtm code and a message the caller
// may see (EStorageFull: 507; EUnavailable: 503), keeping the server's
// error in the chain for the log. Other errors are returned as they are.
func storageError(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case sqlStateDiskFull:
		return fmt.Errorf("%w (%w)", dtm.Errorf(dtm.EStorageFull,
			"the store is full (no disk space): nothing of this write was applied"), err)
	case sqlStateReadOnly:
		return fmt.Errorf("%w (%w)", dtm.Errorf(dtm.EUnavailable,
			"the store is read-only: nothing of this write was applied"), err)
	}
	return err
}
