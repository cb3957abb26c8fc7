package postgres_test

import (
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

func TestDB_ExportJobs(t *testing.T) {
	storetest.RunJobs(t, func(t *testing.T) dtm.ExportJobs { return MustOpen(t) })
}
