package target

import (
	"testing"

	"github.com/dtm-project/dtm/fhir"
)

func TestMetaVersion(t *testing.T) {
	for _, tc := range []struct {
		json string
		want int64
	}{
		{`{"resourceType":"Patient","id":"p","meta":{"versionId":"7","lastUpdated":"2025-01-01T00:00:00Z"}}`, 7},
		{`{"resourceType":"Patient","contained":[{"resourceType":"X","meta":{"versionId":"9"}}],"meta":{"versionId":"3"}}`, 3},
		{`{"resourceType":"Patient","text":{"div":"\"meta\":{\"versionId\":\"5\"}"},"id":"p"}`, 0},
		{`{"resourceType":"Patient","meta":{"versionId":"x"}}`, 0},
		{`{"resourceType":"Patient","meta":{"versionId":"-1"}}`, 0},
		{`not json`, 0},
	} {
		if got := metaVersion([]byte(tc.json)); got != tc.want {
			t.Errorf("metaVersion(%s) = %d, want %d", tc.json, got, tc.want)
		}
	}
}

// headerVersionCases are valid resources on which headerVersion must
// agree with metaVersion.
var headerVersionCases = []string{
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"7","lastUpdated":"2025-01-01T00:00:00Z"}}`,
	`{"resourceType":"Patient","id":"p","contained":[{"resourceType":"X","id":"x","meta":{"versionId":"9"}}],"meta":{"versionId":"3"}}`,
	`{"resourceType":"Patient","id":"p","text":{"div":"\"meta\":{\"versionId\":\"5\"}"}}`,
	`{"resourceType":"Patient","id":"p","text":{"div":"}]\\"},"n":[1,-2.5e3,true,false,null,{"a":"]}"}],"meta":{"versionId":"4"}}`,
	` { "resourceType" : "Patient" , "id" : "p" , "meta" : { "versionId" : "12" } } `,
	`{"resourceType":"Patient","id":"p","m\u0065ta":{"versionId":"6"}}`,
	`{"resourceType":"Patient","id":"p","\"meta":{"versionId":"6"}}`,
	`{"resourceType":"Patient","id":"p","Meta":{"versionId":"6"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"VersionId":"8"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"8","versionId":"9"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"8","versionid":"9"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"lastUpdated":"x","verſionId":"5"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"\u0035"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"5","versionId":null}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":" 5"}}`,
	`{"resourceType":"Patient","id":"p","meta":[{"versionId":"5"}]}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":8}}`,
	`{"resourceType":"Patient","id":"p","meta":null}`,
	`{"resourceType":"Patient","id":"p","meta":"7"}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"x"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"-1"}}`,
	`{"resourceType":"Patient","id":"p","meta":{"versionId":"99999999999999999999"}}`,
	`{"resourceType":"Patient","id":"p"}`,
}

// TestHeaderVersion checks that headerVersion reads the version metaVersion
// reads from every resource ParseHeader accepts.
func TestHeaderVersion(t *testing.T) {
	for _, c := range headerVersionCases {
		if _, err := fhir.ParseHeader([]byte(c)); err != nil {
			t.Fatalf("case is not a valid resource: %v: %s", err, c)
		}
		if got, want := headerVersion([]byte(c)), metaVersion([]byte(c)); got != want {
			t.Errorf("headerVersion(%s) = %d, metaVersion gives %d", c, got, want)
		}
	}
	if got := headerVersion([]byte(headerVersionCases[3])); got != 4 {
		t.Errorf("headerVersion after nested values = %d, want 4", got)
	}
}

// FuzzHeaderVersion checks headerVersion against metaVersion on whatever
// ParseHeader accepts.
func FuzzHeaderVersion(f *testing.F) {
	for _, c := range headerVersionCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := fhir.ParseHeader(b); err != nil {
			return
		}
		if got, want := headerVersion(b), metaVersion(b); got != want {
			t.Fatalf("headerVersion = %d, metaVersion gives %d", got, want)
		}
	})
}

func BenchmarkHeaderVersion(b *testing.B) {
	r := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"12","lastUpdated":"2025-01-01T00:00:00.000000Z"},"status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"271649006"}]},"subject":{"reference":"Patient/p"},"valueQuantity":{"value":120,"unit":"mm[Hg]"}}`)
	for b.Loop() {
		headerVersion(r)
	}
}

func BenchmarkMetaVersion(b *testing.B) {
	r := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"12","lastUpdated":"2025-01-01T00:00:00.000000Z"},"status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"271649006"}]},"subject":{"reference":"Patient/p"},"valueQuantity":{"value":120,"unit":"mm[Hg]"}}`)
	for b.Loop() {
		metaVersion(r)
	}
}

func TestDeleteTarget(t *testing.T) {
	for _, tc := range []struct {
		url, typ, id string
		ok           bool
	}{
		{"Patient/p1", "Patient", "p1", true},
		{"http://src/fhir/Observation/o-1", "Observation", "o-1", true},
		{"Observation/o1/_history/3", "Observation", "o1", true},
		{"/fhir/Condition/c.1", "Condition", "c.1", true},
		{"Patient", "", "", false},
		{"patient/p1", "", "", false},
		{"Patient/a..b", "", "", false},
		{"", "", "", false},
	} {
		typ, id, ok := deleteTarget(tc.url)
		if typ != tc.typ || id != tc.id || ok != tc.ok {
			t.Errorf("deleteTarget(%q) = %q, %q, %v; want %q, %q, %v", tc.url, typ, id, ok, tc.typ, tc.id, tc.ok)
		}
	}
}

func FuzzMetaVersion(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Patient","meta":{"versionId":"7"}}`))
	f.Add([]byte(`{"meta":[{"x":1}],"a":{"b":[1,2,{"c":null}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v := metaVersion(b); v < 0 {
			t.Fatalf("negative version %d", v)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"transactionTime":"2025-03-01T12:00:00.654321Z","request":"x","requiresAccessToken":true,"output":[{"type":"Patient","url":"/f/1","count":2}],"deleted":[],"error":[]}`))
	f.Add([]byte(`{"transactionTime":"2025-03-01T12:00:00Z","output":[{"url":"http://[::1"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b, "http://127.0.0.1:1/status/1")
		if err == nil && m.TransactionTime.IsZero() {
			t.Fatal("manifest without transactionTime accepted")
		}
	})
}
