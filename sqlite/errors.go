package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dtm-project/dtm"
)

// storageError gives a write that failed because the database or its disk
// is full, or read-only, a dtm code and a message the caller may see
// (EStorageFull: 507; EUnavailable: 503), keeping the driver's error and
// the file's path in the chain for the log. Other errors are returned as
// they are.
func (db *DB) storageError(err error) error {
	var se *sqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("%w (sqlite %s: %w)", dtm.Errorf(dtm.EStorageFull,
			"the store is full (no disk space): nothing of this write was applied"), db.path, err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("%w (sqlite %s: %w)", dtm.Errorf(dtm.EUnavailable,
			"the store is read-only: nothing of this write was applied"), db.path, err)
	}
	return err
}
