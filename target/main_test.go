package target_test

import (
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster pgtest may start.
func TestMain(m *testing.M) { pgtest.Main(m) }
