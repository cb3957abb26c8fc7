package bulk

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

func TestParseParams(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	async := http.Header{"Prefer": {"respond-async"}}
	lenient := http.Header{"Prefer": {"respond-async, handling=lenient"}}
	tests := []struct {
		name    string
		query   string
		header  http.Header
		wantErr string // substring of the caller-safe message; "" for OK
		check   func(t *testing.T, p exportParams)
	}{
		{name: "OK/Empty", query: "", header: async},
		{name: "OK/FullContentType", query: "_outputFormat=application%2Ffhir%2Bndjson", header: async},
		{name: "OK/ApplicationNDJSON", query: "_outputFormat=application/ndjson", header: async},
		{name: "OK/NDJSON", query: "_outputFormat=ndjson", header: async},
		{name: "ErrOutputFormat", query: "_outputFormat=text/csv", header: async, wantErr: "_outputFormat"},
		{name: "ErrOutputFormatTwice", query: "_outputFormat=ndjson&_outputFormat=ndjson", header: async, wantErr: "once"},
		{name: "OK/Since", query: "_since=2026-02-01T10:00:00.123456Z", header: async, check: func(t *testing.T, p exportParams) {
			if want := time.Date(2026, 2, 1, 10, 0, 0, 123456000, time.UTC); !p.Since.Equal(want) {
				t.Errorf("Since = %v, want %v", p.Since, want)
			}
		}},
		{name: "OK/SinceOffset", query: "_since=2026-02-01T10:00:00%2B01:00", header: async, check: func(t *testing.T, p exportParams) {
			if want := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC); !p.Since.Equal(want) {
				t.Errorf("Since = %v, want %v", p.Since, want)
			}
		}},
		{name: "ErrSinceNoZone", query: "_since=2026-02-01T10:00:00", header: async, wantErr: "_since"},
		{name: "ErrSinceDateOnly", query: "_since=2026-02-01", header: async, wantErr: "_since"},
		{name: "ErrSinceGarbage", query: "_since=yesterday", header: async, wantErr: "_since"},
		{name: "ErrSinceFuture", query: "_since=2026-03-01T12:00:01Z", header: async, wantErr: "future"},
		{name: "ErrSinceTwice", query: "_since=2026-02-01T10:00:00Z&_since=2026-02-01T10:00:00Z", header: async, wantErr: "once"},
		{name: "OK/Until", query: "_until=2027-01-01T00:00:00Z", header: async},
		{name: "ErrUntilBeforeSince", query: "_since=2026-02-01T10:00:00Z&_until=2026-01-01T00:00:00Z", header: async, wantErr: "_until"},
		{name: "OK/Types", query: "_type=Patient,Observation&_type=Condition&_type=Patient", header: async, check: func(t *testing.T, p exportParams) {
			if want := []string{"Patient", "Observation", "Condition"}; !slices.Equal(p.Types, want) {
				t.Errorf("Types = %v, want %v", p.Types, want)
			}
		}},
		{name: "ErrTypeUnknown", query: "_type=Patient,Bogus", header: async, wantErr: "Bogus"},
		{name: "ErrTypeLowercase", query: "_type=patient", header: async, wantErr: "patient"},
		{name: "ErrTypeEmpty", query: "_type=Patient,", header: async, wantErr: "_type"},
		{name: "ErrElements", query: "_elements=id", header: async, wantErr: "_elements"},
		{name: "ErrTypeFilter", query: "_typeFilter=Observation%3Fcode%3D1", header: async, wantErr: "_typeFilter"},
		{name: "ErrPatient", query: "patient=Patient/1", header: async, wantErr: "patient"},
		{name: "ErrIncludeAssociatedData", query: "includeAssociatedData=LatestProvenanceResources", header: async, wantErr: "includeAssociatedData"},
		{name: "OK/LenientIgnores", query: "_elements=id&_typeFilter=x", header: lenient, check: func(t *testing.T, p exportParams) {
			if !p.Lenient || !slices.Equal(p.Ignored, []string{"_elements", "_typeFilter"}) {
				t.Errorf("Lenient %v Ignored %v", p.Lenient, p.Ignored)
			}
		}},
		{name: "ErrLenientStillValidates", query: "_type=Bogus", header: lenient, wantErr: "Bogus"},
		{name: "ErrNoPrefer", query: "", header: http.Header{}, wantErr: "respond-async"},
		{name: "OK/LenientWithoutAsync", query: "", header: http.Header{"Prefer": {"handling=lenient"}}},
		{name: "OK/PreferTwoHeaders", query: "", header: http.Header{"Prefer": {"handling=lenient", "respond-async"}}},
		{name: "OK/AcceptFHIRJSON", header: http.Header{"Prefer": {"respond-async"}, "Accept": {"application/fhir+json"}}},
		{name: "OK/AcceptList", header: http.Header{"Prefer": {"respond-async"}, "Accept": {"text/html, application/fhir+json;q=0.9"}}},
		{name: "ErrAcceptXML", header: http.Header{"Prefer": {"respond-async"}, "Accept": {"application/fhir+xml"}}, wantErr: "Accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseParams(q, tt.header, now)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("parseParams: %v", err)
				}
				if tt.check != nil {
					tt.check(t, p)
				}
				return
			}
			if dtm.ErrorCode(err) != dtm.EInvalid || !strings.Contains(dtm.ErrorMessage(err), tt.wantErr) {
				t.Fatalf("err = %v, want EInvalid mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadParameters(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		body := `{"resourceType":"Parameters","parameter":[
			{"name":"_since","valueInstant":"2026-01-01T00:00:00Z"},
			{"name":"_type","valueString":"Patient"},{"name":"_type","valueString":"Observation"},
			{"name":"_outputFormat","valueString":"ndjson"},
			{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`
		q, err := readParameters(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		want := url.Values{"_since": {"2026-01-01T00:00:00Z"}, "_type": {"Patient", "Observation"},
			"_outputFormat": {"ndjson"}, "patient": {""}}
		if q.Encode() != want.Encode() {
			t.Errorf("got %v, want %v", q, want)
		}
	})
	t.Run("OK/Empty", func(t *testing.T) {
		q, err := readParameters(strings.NewReader(""))
		if err != nil || len(q) != 0 {
			t.Fatalf("got %v, %v", q, err)
		}
	})
	t.Run("ErrNotParameters", func(t *testing.T) {
		_, err := readParameters(strings.NewReader(`{"resourceType":"Patient"}`))
		if dtm.ErrorCode(err) != dtm.EInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		_, err := readParameters(strings.NewReader(`{"resourceType":`))
		if dtm.ErrorCode(err) != dtm.EInvalid {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		_, err := readParameters(strings.NewReader(strings.Repeat(" ", maxParametersBody) + "{}"))
		if dtm.ErrorCode(err) != dtm.ETooLarge {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestR4Types(t *testing.T) {
	if n := len(r4Types); n != 146 {
		t.Errorf("%d R4 resource types, want 146", n)
	}
}

func FuzzParseParams(f *testing.F) {
	f.Add("_since=2026-02-01T10:00:00Z&_type=Patient", "respond-async")
	f.Add("_outputFormat=ndjson&_elements=x", "respond-async,handling=lenient")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, query, prefer string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, err := parseParams(q, http.Header{"Prefer": {prefer}}, now)
		if err != nil {
			if dtm.ErrorCode(err) != dtm.EInvalid {
				t.Fatalf("error code %s, want invalid: %v", dtm.ErrorCode(err), err)
			}
			return
		}
		if p.Since.After(now) {
			t.Fatalf("accepted a future _since %v", p.Since)
		}
		for _, typ := range p.Types {
			if !validResourceType(typ) {
				t.Fatalf("accepted _type %q", typ)
			}
		}
	})
}

func FuzzReadParameters(f *testing.F) {
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2026-01-01T00:00:00Z"}]}`)
	f.Add(`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, body string) {
		q, err := readParameters(strings.NewReader(body))
		if err != nil {
			if c := dtm.ErrorCode(err); c != dtm.EInvalid && c != dtm.ETooLarge {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		for name := range q {
			if _, err := url.ParseQuery(url.Values{name: q[name]}.Encode()); err != nil {
				t.Fatalf("parameters do not round-trip through a query string: %v", err)
			}
		}
	})
}
