package fhir

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestStampMeta(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 0, 123456000, time.UTC)
	tests := []struct{ name, in, want string }{
		{"OK/NoMeta", `{"resourceType":"Patient","id":"p1","active":true}`,
			`{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2026-03-29T01:30:00.123456Z"},"active":true}`},
		{"OK/ReplaceKeepsOthers", `{"resourceType":"Observation","meta":{"versionId":"9","security":[{"code":"R"}],"lastUpdated":"2001-01-01T00:00:00Z"},"id":"o","valueQuantity":{"value":5.60}}`,
			`{"resourceType":"Observation","meta":{"versionId":"3","lastUpdated":"2026-03-29T01:30:00.123456Z","security":[{"code":"R"}]},"id":"o","valueQuantity":{"value":5.60}}`},
		{"OK/NoID", `{"resourceType":"Basic"}`,
			`{"resourceType":"Basic","meta":{"versionId":"3","lastUpdated":"2026-03-29T01:30:00.123456Z"}}`},
		{"OK/Empty", `{}`, `{"meta":{"versionId":"3","lastUpdated":"2026-03-29T01:30:00.123456Z"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := StampMeta([]byte(tt.in), 3, at)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("StampMeta:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{``, `[]`, `{"a":}`, `{"a":1} x`, "{\"a\":\"\xff\"}", `{"meta":{},"meta":{}}`, `{"meta":[]}`} {
			if _, err := StampMeta([]byte(in), 1, at); err == nil {
				t.Errorf("StampMeta(%q): no error", in)
			}
		}
	})
}

func TestContentHash(t *testing.T) {
	base := `{"resourceType":"Observation","id":"o","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"},"valueQuantity":{"value":5.60,"unit":"mmol/L"}}`
	same := []string{
		`{"id":"o","resourceType":"Observation","valueQuantity":{"unit":"mmol/L","value":5.60}}`,
		"{ \"resourceType\" : \"Observation\",\n \"id\":\"o\",\"meta\":{\"versionId\":\"7\"},\"valueQuantity\":{\"value\":5.60,\"unit\":\"mmol\\/L\"}}",
	}
	different := []string{
		`{"resourceType":"Observation","id":"o","valueQuantity":{"value":5.6,"unit":"mmol/L"}}`,
		`{"resourceType":"Observation","id":"o","meta":{"security":[{"code":"R"}]},"valueQuantity":{"value":5.60,"unit":"mmol/L"}}`,
		`{"resourceType":"Observation","id":"o","valueQuantity":{"value":5.60,"unit":"mmol/l"}}`,
	}
	want, err := ContentHash([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range same {
		if got, err := ContentHash([]byte(s)); err != nil || got != want {
			t.Errorf("ContentHash(%s) = %s, %v; want %s", s, got, err, want)
		}
	}
	for _, s := range different {
		if got, _ := ContentHash([]byte(s)); got == want {
			t.Errorf("ContentHash(%s) equals the base hash", s)
		}
	}
	for _, dup := range []string{`{"a":1,"a":2}`, `{"b":{"x":1,"x":1}}`, `{"a":1,"\u0061":2}`} {
		if _, err := ContentHash([]byte(dup)); err == nil {
			t.Errorf("duplicate keys in %s: no error", dup)
		}
	}
	a, _ := ContentHash([]byte(`{"a":"\ud800"}`))
	b, _ := ContentHash([]byte(`{"a":"\udbff"}`))
	if a == b {
		t.Error("different lone surrogates hash alike")
	}
	pair, _ := ContentHash([]byte(`{"a":"\ud83d\ude00"}`))
	literal, _ := ContentHash([]byte(`{"a":"😀"}`))
	if pair != literal {
		t.Error("an escaped surrogate pair and its character hash differently")
	}
}

func FuzzContentHash(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Patient","id":"x","meta":{"versionId":"1"},"name":[{"given":["Zoë"]}],"n":1.50e3}`))
	f.Add([]byte(`{"a":[[[[{}]]]],"b":"\u00e9\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h1, err := ContentHash(data)
		if err != nil {
			return
		}
		canon, err := Canonical(data)
		if err != nil {
			t.Fatalf("Canonical failed after ContentHash succeeded: %v", err)
		}
		// The canonical form means the same as the input, meta's server
		// fields aside.
		var in, out map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("encoding/json rejects what Canonical accepted: %v", err)
		}
		if meta, ok := in["meta"].(map[string]any); ok {
			delete(meta, "versionId")
			delete(meta, "lastUpdated")
			if len(meta) == 0 {
				delete(in, "meta")
			}
		}
		dec = json.NewDecoder(bytes.NewReader(canon))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("canonical form is not JSON: %v", err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("canonical form differs in meaning:\n in %v\nout %v", in, out)
		}
		// The canonical form is a fixed point.
		h2, err := ContentHash(canon)
		if err != nil || h1 != h2 {
			t.Fatalf("hash of canonical form differs: %v", err)
		}
		stamped, err := StampMeta(data, 42, time.Unix(0, 0))
		if err != nil {
			t.Fatalf("StampMeta failed on valid object: %v", err)
		}
		if h3, err := ContentHash(stamped); err != nil || h3 != h1 {
			t.Fatalf("stamping meta changed the content hash")
		}
	})
}
