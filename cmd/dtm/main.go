// Command dtm is the Data Transfer Mechanism for GP practice migrations: one
// binary with a source role (serve a practice's records as FHIR Bulk Data)
// and a target role (pull, validate, load, reconcile and cut over).
//
// Exit codes: 0 success; 1 failure; 2 bad usage (unknown flag or argument);
// 3 the work finished but found problems (for example a reconciliation
// mismatch or a failed readiness check); 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, documented in the package comment and in docs/OPERATIONS.md.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitFindings    = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Run executes the dtm command line with args and returns the process exit
// code. End-to-end tests call it directly.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFindings):
		return exitFindings
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "dtm: interrupted")
		return exitInterrupted
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "dtm: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stderr, "dtm: %v\n", err)
	return exitFailure
}

// errFindings is returned by commands that completed but found problems the
// operator must act on; it maps to exit code 3.
var errFindings = errors.New("completed with findings")

// usageError marks a command-line mistake; it maps to exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }
