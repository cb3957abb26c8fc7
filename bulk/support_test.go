package bulk

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
)

// discardLogger returns a logger that drops everything.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// outcome is an OperationOutcome as tests read it.
type outcome struct {
	ResourceType string
	Issue        []struct{ Severity, Code, Diagnostics string }
}

// fileLines returns the lines writeFile produces for file f of job.
func (s *Server) fileLines(t *testing.T, job *dtm.ExportJob, f dtm.ExportFile) []string {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if _, err := s.writeFile(context.Background(), job, f, w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}
