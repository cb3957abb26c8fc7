package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
)

func TestOperationOutcome(t *testing.T) {
	tests := []struct {
		name   string
		issues []OutcomeIssue
		want   string
	}{
		{"OK/One", []OutcomeIssue{{Severity: "error", Code: "invalid", Diagnostics: "line 3: missing id <&>", Expression: []string{"Patient.id"}}},
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"line 3: missing id <&>","expression":["Patient.id"]}]}`},
		{"OK/Defaults", []OutcomeIssue{{}, {Severity: "warning", Code: "not-supported"}},
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"},{"severity":"warning","code":"not-supported"}]}`},
		{"OK/None", nil,
			`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"ok"}]}`},
		{"OK/Unicode", []OutcomeIssue{{Diagnostics: "é \u2028 \"q\""}},
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"é \u2028 \"q\""}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := OperationOutcome(tt.issues...)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if err := walkObject(got, nil); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestIssueCodeAndHTTPStatus(t *testing.T) {
	tests := []struct {
		code   string
		issue  string
		status int
	}{
		{dtm.EInvalid, "invalid", 400},
		{dtm.ENotFound, "not-found", 404},
		{dtm.EConflict, "conflict", 409},
		{dtm.EUnauthorized, "login", 401},
		{dtm.EForbidden, "forbidden", 403},
		{dtm.ETooMany, "throttled", 429},
		{dtm.EGone, "deleted", 410},
		{dtm.EUnavailable, "transient", 503},
		{dtm.EInternal, "exception", 500},
		{dtm.ETooLarge, "too-long", 413},
		{dtm.EFrozen, "business-rule", 409},
		{dtm.ENotSupported, "not-supported", 501},
		{dtm.EStorageFull, "no-store", 507},
		{"bogus", "exception", 500},
	}
	// Every code of the R4 issue-type value set IssueCode may return.
	r4 := "invalid structure required value invariant security login unknown expired forbidden suppressed processing not-supported duplicate multiple-matches not-found deleted too-long code-invalid extension too-costly business-rule conflict transient lock-error no-store exception timeout incomplete throttled informational"
	for _, tt := range tests {
		if got := IssueCode(tt.code); got != tt.issue || !strings.Contains(" "+r4+" ", " "+got+" ") {
			t.Errorf("IssueCode(%q) = %q, want %q", tt.code, got, tt.issue)
		}
		if got := HTTPStatus(tt.code); got != tt.status {
			t.Errorf("HTTPStatus(%q) = %d, want %d", tt.code, got, tt.status)
		}
	}
	if HTTPStatus("") != http.StatusOK {
		t.Error(`HTTPStatus("") is not 200`)
	}
}

func TestErrorCode(t *testing.T) {
	_, headerErr := ParseHeader([]byte(`{"resourceType":"Patient"}`))
	_, hashErr := ContentHash([]byte(`{"a":1,"a":2}`))
	_, bundleErr := ReadBundle(strings.NewReader(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Patient?x=1"}}]}`), func(BundleEntry) error { return nil })
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{headerErr, dtm.EInvalid},
		{fmt.Errorf("load x.ndjson: %w", &LineError{Line: 2, Err: headerErr}), dtm.EInvalid},
		{hashErr, dtm.EInvalid},
		{bundleErr, dtm.ENotSupported},
		{&LineError{Line: 1, Err: &inputError{kind: ErrTooLarge, msg: "line exceeds 64 MiB"}}, dtm.ETooLarge},
		{dtm.Errorf(dtm.EFrozen, "practice is frozen"), dtm.EFrozen},
		{errors.New("disk on fire"), dtm.EInternal},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestErrorOutcome(t *testing.T) {
	_, headerErr := ParseHeader([]byte(`{"resourceType":"Patient","id":"a/b"}`))
	tests := []struct {
		err    error
		status int
		diag   string
	}{
		{&LineError{Line: 7, Err: headerErr}, 400, `line 7: invalid id "a/b": must match [A-Za-z0-9-.]{1,64}`},
		{dtm.Errorf(dtm.ENotFound, "no such job"), 404, "no such job"},
		{fmt.Errorf("query patient Zoë Smith: %w", errors.New("db down")), 500, "internal error"},
	}
	for _, tt := range tests {
		status, body := ErrorOutcome(tt.err)
		var oo struct {
			ResourceType string
			Issue        []struct{ Severity, Code, Diagnostics string }
		}
		if err := json.Unmarshal(body, &oo); err != nil {
			t.Fatal(err)
		}
		if status != tt.status || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Diagnostics != tt.diag {
			t.Errorf("ErrorOutcome(%v) = %d, %s", tt.err, status, body)
		}
	}
}
