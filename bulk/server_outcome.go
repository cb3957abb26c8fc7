package bulk

import (
	"encoding/json"
	"net/http"

	"github.com/dtm-project/dtm"
)

// TODO(fhir): switch to fhir.OperationOutcome, fhir.HTTPStatus and
// fhir.IssueCode once they land in fhir/outcome.go; these private versions
// keep the mapping in one place until then.

// httpStatus maps a dtm error code to an HTTP status.
func httpStatus(code string) int {
	switch code {
	case dtm.EInvalid, dtm.ENotSupported:
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
	}
	return http.StatusInternalServerError
}

// issueCode maps a dtm error code to a FHIR OperationOutcome issue type
// (http://hl7.org/fhir/issue-type).
func issueCode(code string) string {
	switch code {
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
		return "expired"
	case dtm.EUnavailable:
		return "transient"
	case dtm.ETooLarge:
		return "too-long"
	case dtm.EFrozen:
		return "lock-error"
	case dtm.ENotSupported:
		return "not-supported"
	}
	return "exception"
}

// outcomeIssue is one issue of an OperationOutcome.
type outcomeIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code"`
	Diagnostics string `json:"diagnostics,omitempty"`
}

// outcome is a FHIR OperationOutcome.
type outcome struct {
	ResourceType string         `json:"resourceType"`
	Issue        []outcomeIssue `json:"issue"`
}

// operationOutcome renders an OperationOutcome with one issue.
func operationOutcome(severity, code, diagnostics string) []byte {
	b, _ := json.Marshal(outcome{ResourceType: "OperationOutcome",
		Issue: []outcomeIssue{{Severity: severity, Code: code, Diagnostics: diagnostics}}})
	return b
}
