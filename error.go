package dtm

import (
	"errors"
	"fmt"
)

// Error codes: the one error vocabulary of dtm. Each is mapped once to an HTTP
// status and a FHIR OperationOutcome issue code (see package bulk).
const (
	EInvalid      = "invalid"       // the caller sent something malformed
	ENotFound     = "not-found"     // no such practice, resource, job or file
	EConflict     = "conflict"      // the request conflicts with current state
	EUnauthorized = "unauthorized"  // no or bad credentials
	EForbidden    = "forbidden"     // credentials valid, access not granted
	ETooMany      = "too-many"      // a rate or agreement limit was reached
	EGone         = "gone"          // the thing existed but has expired or was cancelled
	EUnavailable  = "unavailable"   // temporarily unable; retry later
	EInternal     = "internal"      // a bug or an infrastructure failure
	ETooLarge     = "too-large"     // input exceeds a size limit
	EFrozen       = "frozen"        // the practice is frozen for cutover
	ENotSupported = "not-supported" // a valid but unsupported request
	EStorageFull  = "storage-full"  // the store has no space left; nothing was written
)

// Error is an application error with a code from the vocabulary above and a
// message that is safe to show to the caller. It never carries patient data.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface: the message, then the code in
// brackets, e.g. "practice A81001 not found (not-found)".
func (e *Error) Error() string {
	return e.Message + " (" + e.Code + ")"
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the caller-safe message of the first *Error in err's
// chain, or a generic message for any other error (whose detail belongs in
// logs, not in responses).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
