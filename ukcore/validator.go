package ukcore

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/google/fhir/go/jsonformat"
)

// Severity is a FHIR OperationOutcome issue severity
// (http://hl7.org/fhir/R4/valueset-issue-severity.html).
type Severity string

// The issue severities a Validator reports. An error or a fatal finding
// quarantines the resource; a warning or information does not.
const (
	// SeverityFatal means the input could not be read as a FHIR resource at
	// all (not JSON, not an object, nested too deeply), so no other check ran.
	SeverityFatal Severity = "fatal"
	// SeverityError means the resource breaks a rule it must meet.
	SeverityError Severity = "error"
	// SeverityWarning means the resource is acceptable but should be fixed
	// at source.
	SeverityWarning Severity = "warning"
	// SeverityInformation is advice only.
	SeverityInformation Severity = "information"
)

// Finding is one problem found in a resource. It never holds patient data:
// Message names the rule that failed, never the offending value.
type Finding struct {
	// Severity says whether the finding quarantines the resource.
	Severity Severity
	// Code is the FHIR issue-type code
	// (http://hl7.org/fhir/R4/valueset-issue-type.html): structure, value,
	// code-invalid, invariant, required, not-found, not-supported,
	// business-rule or exception.
	Code string
	// Rule is the stable identifier of the check, one of the Rule constants.
	Rule string
	// Expression locates the element, FHIRPath-style, for example
	// "Patient.identifier[0].value". It is empty when the whole resource is
	// concerned.
	Expression string
	// Message says what is wrong, without quoting the data.
	Message string
}

// Result is the outcome of validating one resource.
type Result struct {
	// Findings are sorted by Expression, then Rule, then Message. Nil when
	// the resource passed every check.
	Findings []Finding
}

// HasErrors reports whether any finding is an error or fatal, meaning the
// resource must be quarantined rather than loaded.
func (r Result) HasErrors() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityError || f.Severity == SeverityFatal {
			return true
		}
	}
	return false
}

// Options configure a Validator. The zero value is usable: Now defaults to
// time.Now and the optional checks are off.
type Options struct {
	// Now returns the current time for the date-in-future rule. Nil means
	// time.Now.
	Now func() time.Time
	// Resolve, when set, reports whether a relative reference "Type/id"
	// exists in the delta being applied or in the target store; references
	// it rejects are errors (reference-unresolved). It is called from every
	// goroutine that calls Validate, so it must be safe for concurrent use;
	// if it panics, Validate reports a validator-internal finding.
	Resolve func(ref string) bool
	// PracticeODS, when set, is the ODS code of the practice being migrated:
	// a Patient whose generalPractitioner names other practices by ODS code
	// only gets a patient-not-in-practice warning.
	PracticeODS string
}

// Validator checks FHIR R4 resources for structure and UK Core rules.
// It is safe for concurrent use by multiple goroutines (as long as
// Options.Resolve is).
type Validator struct {
	now      func() time.Time
	resolve  func(string) bool
	practice string
	// um is shared by all goroutines: jsonformat.Unmarshaller keeps no
	// per-call state (its fields are set once by the constructor, and the
	// library's global caches are guarded by a mutex or sync.Map), so
	// Unmarshal may be called concurrently.
	um *jsonformat.Unmarshaller
}

// NewValidator returns a Validator configured by opts. It fails only if
// the FHIR R4 structural validator cannot be built, or if PracticeODS is set
// but is not a well-formed ODS code.
func NewValidator(opts Options) (*Validator, error) {
	um, err := newStructureValidator()
	if err != nil {
		return nil, fmt.Errorf("new validator: %w", err)
	}
	if opts.PracticeODS != "" && !ValidODSCode(opts.PracticeODS) {
		return nil, fmt.Errorf("new validator: practice ODS code is not well formed")
	}
	v := &Validator{now: opts.Now, resolve: opts.Resolve, practice: opts.PracticeODS, um: um}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// maxDepth bounds the nesting of JSON objects and arrays Validate accepts.
// Real FHIR resources stay far below it (deeply nested Questionnaire items
// and extensions reach a few dozen levels); the bound keeps recursive
// decoders from exhausting the stack on hostile input.
const maxDepth = 256

// Validate checks one FHIR R4 resource given as JSON and returns every
// finding. It never panics and never returns patient data in a finding.
// Validate is safe for concurrent use.
func (v *Validator) Validate(data []byte) (res Result) {
	defer func() {
		// The third-party structural validator has not been proven free of
		// panics on hostile input; a panic must quarantine one resource, not
		// stop a migration.
		if p := recover(); p != nil {
			res = Result{Findings: []Finding{{
				Severity: SeverityFatal, Code: "exception", Rule: RuleInternal,
				Message: "validator failed on this resource; it was not checked",
			}}}
		}
	}()
	if d := jsonDepth(data); d > maxDepth {
		return fatal(fmt.Sprintf("JSON is nested more than %d levels deep", maxDepth))
	}
	root, ok := decodeObject(data)
	if !ok {
		return fatal("resource is not a JSON object")
	}
	findings := v.structure(data)
	w := walker{v: v, now: v.now(), findings: findings}
	w.walkRoot(root)
	findings = w.findings
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Expression, b.Expression),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return Result{Findings: findings}
}

// fatal returns a Result with a single fatal structure finding.
func fatal(msg string) Result {
	return Result{Findings: []Finding{{
		Severity: SeverityFatal, Code: "structure", Rule: RuleStructure, Message: msg,
	}}}
}

// jsonDepth returns the deepest nesting of objects and arrays in data,
// ignoring brackets inside strings. It does not validate the JSON.
func jsonDepth(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > deepest {
				deepest = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
