package bulk

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

// Output formats accepted for _outputFormat: the full content type and the
// two abbreviations the IG requires servers to accept.
var outputFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// knownParams are the kick-off parameters the server implements.
var knownParams = map[string]bool{"_outputFormat": true, "_since": true, "_until": true, "_type": true}

// maxParametersBody bounds a POST kick-off body.
const maxParametersBody = 1 << 20

// exportParams is a parsed, validated kick-off request.
type exportParams struct {
	Since   time.Time // zero when _since is absent
	Until   time.Time // zero when _until is absent
	Types   []string  // _type values, deduplicated, in request order
	Lenient bool      // Prefer: handling=lenient
	// Ignored names each parameter (or header) that was not understood and,
	// because the request was lenient, ignored; reported in the error file.
	Ignored []string
}

// parseParams validates kick-off parameters q (query and Parameters body
// merged) and headers h at time now. It returns an EInvalid error naming
// the offending parameter; unknown parameters are an error unless the
// request says Prefer: handling=lenient, when they are listed in Ignored.
func parseParams(q url.Values, h http.Header, now time.Time) (exportParams, error) {
	var p exportParams
	async, lenient := parsePrefer(h.Values("Prefer"))
	p.Lenient = lenient
	if !acceptsFHIRJSON(h.Values("Accept")) {
		return p, dtm.Errorf(dtm.EInvalid, "Accept must be application/fhir+json")
	}
	if !async {
		if !lenient {
			return p, dtm.Errorf(dtm.EInvalid, "Prefer: respond-async is required")
		}
		p.Ignored = append(p.Ignored, "Prefer (respond-async assumed)")
	}
	for _, name := range sortedKeys(q) {
		var err error
		switch vals := q[name]; name {
		case "_outputFormat":
			err = checkOutputFormat(vals)
		case "_since":
			p.Since, err = parseInstantParam(name, vals)
		case "_until":
			p.Until, err = parseInstantParam(name, vals)
		case "_type":
			p.Types, err = parseTypes(vals)
		default:
			if !lenient {
				return p, dtm.Errorf(dtm.EInvalid, "parameter %s is not supported", name)
			}
			p.Ignored = append(p.Ignored, name)
		}
		if err != nil {
			return p, err
		}
	}
	return p, checkRange(p, now)
}

// checkRange rejects a _since in the future and an _until before _since.
func checkRange(p exportParams, now time.Time) error {
	if !p.Since.IsZero() && p.Since.After(now) {
		return dtm.Errorf(dtm.EInvalid, "_since is in the future")
	}
	if !p.Until.IsZero() && !p.Since.IsZero() && p.Until.Before(p.Since) {
		return dtm.Errorf(dtm.EInvalid, "_until is before _since")
	}
	return nil
}

// parsePrefer reports whether the Prefer headers ask for respond-async and
// for handling=lenient.
func parsePrefer(values []string) (async, lenient bool) {
	for _, v := range values {
		for tok := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ';' }) {
			switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tok), " ", "")) {
			case "respond-async":
				async = true
			case "handling=lenient":
				lenient = true
			}
		}
	}
	return async, lenient
}

// acceptsFHIRJSON reports whether an Accept header admits
// application/fhir+json. An absent header is accepted (the IG lets the
// server assume application/fhir+json).
func acceptsFHIRJSON(values []string) bool {
	if len(values) == 0 {
		return true
	}
	for _, v := range values {
		for r := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(r, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/fhir+json", "application/json+fhir", "application/json", "application/*", "*/*", "":
				return true
			}
		}
	}
	return false
}

// checkOutputFormat accepts one _outputFormat in any of the three spellings.
func checkOutputFormat(vals []string) error {
	if len(vals) != 1 {
		return dtm.Errorf(dtm.EInvalid, "_outputFormat may be given once")
	}
	if !slices.Contains(outputFormats, strings.TrimSpace(vals[0])) {
		return dtm.Errorf(dtm.EInvalid, "_outputFormat %q is not supported; use application/fhir+ndjson", vals[0])
	}
	return nil
}

// parseInstantParam parses a single FHIR instant parameter.
func parseInstantParam(name string, vals []string) (time.Time, error) {
	if len(vals) != 1 {
		return time.Time{}, dtm.Errorf(dtm.EInvalid, "%s may be given once", name)
	}
	t, err := parseInstant(vals[0])
	if err != nil {
		return time.Time{}, dtm.Errorf(dtm.EInvalid, "%s: %s", name, err)
	}
	return t, nil
}

// parseInstant parses a FHIR instant: a full date and time with seconds and
// a time zone (Z or ±hh:mm), fractional seconds optional.
func parseInstant(s string) (time.Time, error) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[10] != 'T' {
		return time.Time{}, fmt.Errorf("%q is not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff]Z|±hh:mm)", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff]Z|±hh:mm)", s)
	}
	return t, nil
}

// parseTypes splits, validates and deduplicates _type values.
func parseTypes(vals []string) ([]string, error) {
	var types []string
	for _, v := range vals {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.TrimSpace(t)
			if !validResourceType(t) {
				return nil, dtm.Errorf(dtm.EInvalid, "_type %q is not a FHIR R4 resource type", t)
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types, nil
}

// sortedKeys returns q's keys in order, so errors are deterministic.
func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parametersResource is the subset of a FHIR Parameters resource a POST
// kick-off uses.
type parametersResource struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name          string  `json:"name"`
		ValueString   *string `json:"valueString"`
		ValueInstant  *string `json:"valueInstant"`
		ValueDateTime *string `json:"valueDateTime"`
		ValueCode     *string `json:"valueCode"`
		ValueURI      *string `json:"valueUri"`
	} `json:"parameter"`
}

// readParameters reads a POST kick-off body (a FHIR Parameters resource)
// into url.Values. A parameter with a value of another type (such as a
// patient reference) is kept with an empty value, so that it is still
// reported as unsupported. An empty body yields no parameters.
func readParameters(body io.Reader) (url.Values, error) {
	data, err := io.ReadAll(io.LimitReader(body, maxParametersBody+1))
	if err != nil {
		return nil, fmt.Errorf("read parameters: %w", err)
	}
	q := url.Values{}
	if len(strings.TrimSpace(string(data))) == 0 {
		return q, nil
	}
	if len(data) > maxParametersBody {
		return nil, dtm.Errorf(dtm.ETooLarge, "Parameters body exceeds %d bytes", maxParametersBody)
	}
	var pr parametersResource
	if err := json.Unmarshal(data, &pr); err != nil || pr.ResourceType != "Parameters" {
		return nil, dtm.Errorf(dtm.EInvalid, "body must be a FHIR Parameters resource")
	}
	for _, prm := range pr.Parameter {
		v := ""
		for _, s := range []*string{prm.ValueString, prm.ValueInstant, prm.ValueDateTime, prm.ValueCode, prm.ValueURI} {
			if s != nil {
				v = *s
				break
			}
		}
		q.Add(prm.Name, v)
	}
	return q, nil
}
