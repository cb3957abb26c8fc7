package target

import "testing"

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
