package bulk

import (
	"io"
	"log/slog"
)

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// outcome is an OperationOutcome as tests read it.
type outcome struct {
	ResourceType string
	Issue        []struct{ Severity, Code, Diagnostics string }
}
