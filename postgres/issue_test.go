package postgres_test

import (
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

func TestDB_Issues(t *testing.T) {
	storetest.RunIssues(t, func(t *testing.T) dtm.Issues { return MustOpen(t) })
}
