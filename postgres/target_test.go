package postgres_test

import (
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/storetest"
)

func TestDB_TargetState(t *testing.T) {
	storetest.RunTarget(t, func(t *testing.T, clock dtm.Clock) dtm.TargetState { return MustOpenClock(t, clock) })
}
