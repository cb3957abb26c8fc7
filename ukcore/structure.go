package ukcore

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// newStructureValidator returns the FHIR R4 structural validator: Google's
// FHIR protocol-buffer parser with extended validation on, which checks
// element names and types, choice types ([x] carries one value), primitive
// formats (dates, URIs, ids, codes, decimals), required elements and
// cardinality, code values of required bindings that are enums in the
// protos, and the resource types a Reference may point to.
// NewUnmarshallerWithoutValidation would skip the required-element and
// reference-type checks, which T4 needs, for under 10% more speed.
func newStructureValidator() (*jsonformat.Unmarshaller, error) {
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("r4 unmarshaller: %w", err)
	}
	um.MaxNestingDepth = maxDepth
	return um, nil
}

// structure runs the R4 structural validator over data and returns its
// findings, all errors with rule r4-structure.
func (v *Validator) structure(data []byte) []Finding {
	_, err := v.um.Unmarshal(data)
	if err == nil {
		return nil
	}
	return structureFindings(err)
}

// structureFindings turns the library's error into findings. The library
// returns a *jsonpbhelper.UnmarshalError or a list of them, from an
// internal package we cannot import; their Path and Details fields are
// exported, and Details is documented by the library to hold no patient
// data (the values it saw go in Diagnostics, which is never used here).
// Any other error may quote the input, so it becomes a generic message.
func structureFindings(err error) []Finding {
	rv := reflect.ValueOf(err)
	if rv.Kind() == reflect.Slice {
		out := make([]Finding, 0, rv.Len())
		for i := range rv.Len() {
			out = append(out, structureFinding(rv.Index(i)))
		}
		if len(out) > 0 {
			return out
		}
	}
	return []Finding{structureFinding(rv)}
}

// structureFinding converts one library error value into a Finding.
func structureFinding(rv reflect.Value) Finding {
	f := Finding{
		Severity: SeverityError, Code: "structure", Rule: RuleStructure,
		Message: "resource is not valid FHIR R4",
	}
	if rv.Kind() == reflect.Interface {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct ||
		!strings.HasSuffix(rv.Elem().Type().PkgPath(), "/jsonpbhelper") {
		return f
	}
	e := rv.Elem()
	path, details := e.FieldByName("Path"), e.FieldByName("Details")
	if path.Kind() == reflect.String {
		f.Expression = safePath(path.String())
	}
	if details.Kind() == reflect.String && details.String() != "" {
		f.Message = details.String()
		f.Code = issueCode(f.Message)
	}
	// For an unknown resource type the path ends in the type as the input
	// spelled it; point at the resourceType element instead.
	if f.Message == "unknown resource type" {
		i := strings.LastIndexByte(f.Expression, '.')
		f.Expression = f.Expression[:i+1] + "resourceType"
	}
	// For an unknown element the library puts its quoted JSON name in
	// Diagnostics. A name is schema, not data; keep it when it looks like
	// one, so the expression points at the element.
	if f.Message == "unknown field" {
		if diag := e.FieldByName("Diagnostics"); diag.Kind() == reflect.String {
			if name, err := strconv.Unquote(diag.String()); err == nil && elementName(name) {
				f.Expression = strings.TrimPrefix(f.Expression+"."+name, ".")
				f.Message = "unknown element"
			}
		}
	}
	return f
}

// issueCode maps the library's error details to a FHIR issue-type code.
func issueCode(details string) string {
	switch {
	case strings.HasPrefix(details, "missing required field"):
		return "required"
	case strings.HasPrefix(details, "invalid reference"):
		return "structure"
	case strings.HasPrefix(details, "invalid JSON"):
		return "structure"
	case strings.HasPrefix(details, "invalid "), strings.HasPrefix(details, "expected "),
		strings.HasPrefix(details, "code type mismatch"), strings.HasPrefix(details, "string contains invalid"),
		strings.HasPrefix(details, "non-negative integer out of range"):
		return "value"
	}
	return "structure"
}

// safePath returns the library's element path with any step that is not an
// element or resource type name replaced by "*": for an unknown resource
// type the path ends in the type as the input spelled it, which may be
// anything.
func safePath(p string) string {
	if p == "" {
		return ""
	}
	steps := strings.Split(p, ".")
	for i, s := range steps {
		name, index, _ := strings.Cut(s, "[")
		if index != "" && (!strings.HasSuffix(index, "]") || !isDigits(index[:len(index)-1])) {
			steps[i] = "*"
			continue
		}
		if !elementName(name) && !resourceTypeName(name) {
			steps[i] = "*"
		}
	}
	return strings.Join(steps, ".")
}

// elementName reports whether s could be a FHIR JSON element name: a
// lower-case ASCII letter (after an optional underscore) then up to 63 ASCII
// letters and digits. Capitalised words and numbers, which could be names
// or identifiers used as keys by mistake, are not reported.
func elementName(s string) bool {
	t := strings.TrimPrefix(s, "_")
	if t == "" || len(s) > 64 || t[0] < 'a' || t[0] > 'z' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
