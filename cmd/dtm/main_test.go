package main

import (
	"testing"

	"github.com/dtm-project/dtm/internal/pgtest"
)

// TestMain stops the PostgreSQL cluster the replica tests may start.
func TestMain(m *testing.M) { pgtest.Main(m) }
