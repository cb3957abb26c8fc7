package fhir

import (
	"errors"
	"fmt"
	"strconv"
)

// Error kinds. Every error this package returns for bad input matches one of
// them with errors.Is, so that callers can map it to the dtm error
// vocabulary (see ErrorCode) without parsing messages. Messages never carry
// patient data: at most a resource type, a truncated id, an element name or
// a byte offset.
var (
	// ErrInvalid marks malformed input: bad JSON, a missing or invalid
	// resourceType or id, a bad reference or Bundle entry.
	ErrInvalid = errors.New("invalid input")
	// ErrTooLarge marks input over a size limit (an NDJSON line, a Bundle
	// entry).
	ErrTooLarge = errors.New("input too large")
	// ErrNotSupported marks valid FHIR that dtm does not handle, such as a
	// conditional DELETE in a Bundle.
	ErrNotSupported = errors.New("not supported")
)

// inputError is an error about the input, of one of the kinds above. Only
// msg (and the cause, when set) is printed.
type inputError struct {
	kind  error // ErrInvalid, ErrTooLarge or ErrNotSupported
	msg   string
	cause error
}

func (e *inputError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *inputError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// invalidf returns an ErrInvalid error with a formatted message.
func invalidf(format string, args ...any) error {
	return &inputError{kind: ErrInvalid, msg: fmt.Sprintf(format, args...)}
}

// LineError is an error about one line of an NDJSON stream. The reader can
// go on after it: the caller decides whether to skip the line or stop.
type LineError struct {
	Line int   // 1-based physical line number
	Err  error // what is wrong; matches ErrInvalid or ErrTooLarge
}

// Error implements the error interface: "line 3: missing id".
func (e *LineError) Error() string { return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *LineError) Unwrap() error { return e.Err }

// EntryError is an error about one entry of a Bundle.
type EntryError struct {
	Index int   // 0-based index in Bundle.entry
	Err   error // what is wrong
}

// Error implements the error interface: "entry 3: missing id".
func (e *EntryError) Error() string { return "entry " + strconv.Itoa(e.Index) + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *EntryError) Unwrap() error { return e.Err }

// quoteID returns s quoted with %q, cut to its first 64 bytes, for error
// messages about ids and types (which are not patient data, but hostile
// input can make them long).
func quoteID(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%q...", s[:64])
	}
	return fmt.Sprintf("%q", s)
}

// formatSize writes a byte count the way limits are configured: "64 MiB".
func formatSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}
