package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/dtm-project/dtm"
)

// OutcomeIssue is one issue of an OperationOutcome.
type OutcomeIssue struct {
	Severity    string   // fatal | error | warning | information; "" means error
	Code        string   // an R4 issue-type code (see IssueCode); "" means processing
	Diagnostics string   // free text for the caller: never patient data
	Expression  []string // FHIRPath locations, e.g. "Bundle.entry[3].resource.id"
}

// OperationOutcome returns a compact FHIR R4 OperationOutcome with the
// given issues, in order. R4 requires at least one issue: with none, it
// holds a single information/informational issue "ok".
func OperationOutcome(issues ...OutcomeIssue) []byte {
	type issue struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics,omitempty"`
		Expression  []string `json:"expression,omitempty"`
	}
	out := struct {
		ResourceType string  `json:"resourceType"`
		Issue        []issue `json:"issue"`
	}{ResourceType: "OperationOutcome"}
	for _, i := range issues {
		if i.Severity == "" {
			i.Severity = "error"
		}
		if i.Code == "" {
			i.Code = "processing"
		}
		out.Issue = append(out.Issue, issue(i))
	}
	if len(out.Issue) == 0 {
		out.Issue = []issue{{Severity: "information", Code: "informational", Diagnostics: "ok"}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil { // cannot happen: only strings
		panic("fhir: encode OperationOutcome: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// IssueCode maps a dtm error code (dtm.EInvalid, ...) to the FHIR R4
// issue-type code (http://hl7.org/fhir/R4/valueset-issue-type.html) of the
// OperationOutcome sent with it. Unknown codes map to "exception".
func IssueCode(dtmCode string) string {
	switch dtmCode {
	case dtm.EInvalid:
		return "invalid"
	case dtm.ENotFound:
		return "not-found"
	case dtm.EConflict:
		return "conflict"
	case dtm.EUnauthorized:
		return "login"
	case dtm.EForbidden:
		return "forbidden"
	case dtm.ETooMany:
		return "throttled"
	case dtm.EGone:
		return "deleted"
	case dtm.EUnavailable:
		return "transient"
	case dtm.ETooLarge:
		return "too-long"
	case dtm.EFrozen:
		return "business-rule"
	case dtm.ENotSupported:
		return "not-supported"
	case dtm.EStorageFull:
		return "no-store"
	}
	return "exception" // dtm.EInternal and anything unknown
}

// HTTPStatus maps a dtm error code to the HTTP status sent with it: 400,
// 404, 409, 401, 403, 429, 410, 503, 500, 413, 409 (frozen), 501 for
// not supported and 507 for a full store. "" (no error) is 200; unknown codes are 500.
func HTTPStatus(dtmCode string) int {
	switch dtmCode {
	case "":
		return http.StatusOK
	case dtm.EInvalid:
		return http.StatusBadRequest
	case dtm.ENotFound:
		return http.StatusNotFound
	case dtm.EConflict, dtm.EFrozen:
		return http.StatusConflict
	case dtm.EUnauthorized:
		return http.StatusUnauthorized
	case dtm.EForbidden:
		return http.StatusForbidden
	case dtm.ETooMany:
		return http.StatusTooManyRequests
	case dtm.EGone:
		return http.StatusGone
	case dtm.EUnavailable:
		return http.StatusServiceUnavailable
	case dtm.ETooLarge:
		return http.StatusRequestEntityTooLarge
	case dtm.ENotSupported:
		return http.StatusNotImplemented
	case dtm.EStorageFull:
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError // dtm.EInternal and anything unknown
}

// ErrorCode returns the dtm error code for err: the code of a *dtm.Error in
// its chain; dtm.EInvalid, dtm.ETooLarge or dtm.ENotSupported for this
// package's input errors (ErrInvalid, ErrTooLarge, ErrNotSupported, and the
// JSON errors of ContentHash, Canonical and StampMeta); dtm.EInternal for
// any other error; "" for nil.
func ErrorCode(err error) string {
	var de *dtm.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &de):
		return de.Code
	case errors.Is(err, ErrTooLarge):
		return dtm.ETooLarge
	case errors.Is(err, ErrNotSupported):
		return dtm.ENotSupported
	case errors.Is(err, ErrInvalid):
		return dtm.EInvalid
	}
	return dtm.EInternal
}

// ErrorOutcome returns the HTTP status and OperationOutcome for err, the
// one place errors become responses. The diagnostics are the caller-safe
// message of a *dtm.Error; for this package's input errors, err.Error() in
// full, so whoever wraps them must add no patient data (a file name, a
// line or entry number are fine); "internal error" for anything else,
// whose detail belongs in the log.
func ErrorOutcome(err error) (status int, outcome []byte) {
	code := ErrorCode(err)
	msg := "internal error"
	var de *dtm.Error
	switch {
	case errors.As(err, &de):
		msg = de.Message
	case code != dtm.EInternal:
		msg = err.Error()
	}
	return HTTPStatus(code), OperationOutcome(OutcomeIssue{Severity: "error", Code: IssueCode(code), Diagnostics: msg})
}
