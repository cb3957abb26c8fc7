package fhir

import (
	"errors"
	"strings"
	"testing"
)

// TestNastyInputs runs hostile resources through every entry point of the
// package: each is either accepted and kept byte for byte, or rejected
// with a precise error, and none crashes.
func TestNastyInputs(t *testing.T) {
	deep := func(n int) string {
		return `{"resourceType":"Basic","id":"deep","x":` + strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) + `}`
	}
	deepArr := `{"resourceType":"Basic","id":"deep","x":` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `}`
	tests := []struct {
		name, in string
		err      string // ParseHeader and ReadBundle error; "" when accepted
		syntax   bool   // err is about JSON itself, so NDJSON, Compact and Compartment reject it too
		compErr  string // Compartment error when the JSON is valid; "" for none
		keep     string // for accepted inputs, a literal the output must keep
	}{
		{"DeepNesting10000", deep(10000), "nesting deeper than 200", true, "", ""},
		{"DeepArrays10000", deepArr, "nesting deeper than 200", true, "", ""},
		{"DeepNesting150", deep(150), "", false, "", strings.Repeat(`{"a":`, 150)},
		{"HugeExponent", `{"resourceType":"Observation","id":"o","valueQuantity":{"value":1e999999}}`, "", false, "", `1e999999`},
		{"HugeInteger", `{"resourceType":"Observation","id":"o","valueInteger":` + strings.Repeat("9", 400) + `}`, "", false, "", strings.Repeat("9", 400)},
		{"NegativeTinyDecimal", `{"resourceType":"Observation","id":"o","valueDecimal":-0.000000000000000000000000000000000001E-999999}`, "", false, "", `-0.000000000000000000000000000000000001E-999999`},
		{"TrailingZeros", `{"resourceType":"Observation","id":"o","valueQuantity":{"value":5.60}}`, "", false, "", `5.60`},
		{"ProtoKeys", `{"resourceType":"Basic","id":"b","__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}},"hasOwnProperty":"y"}`, "", false, "", `"__proto__":{"isAdmin":true}`},
		{"ProtoAsType", `{"resourceType":"__proto__","id":"b"}`, "invalid resourceType", false, "", ""},
		{"UnicodeKept", `{"resourceType":"Patient","id":"p","name":[{"text":"Zoë \u00e9 \ud83d\ude00 ​ \u2028"}]}`, "", false, "", `Zoë \u00e9 \ud83d\ude00 ​ \u2028`},
		{"LoneSurrogateEscape", `{"resourceType":"Basic","id":"b","s":"\ud800"}`, "", false, "", `\ud800`},
		{"NULEscape", `{"resourceType":"Basic","id":"b","s":"a\u0000b"}`, "", false, "", `a\u0000b`},
		{"DuplicateTopKey", `{"resourceType":"Patient","id":"p","active":true,"active":false}`, `duplicate key "active"`, false, "", ""},
		{"DuplicateResourceType", `{"resourceType":"Patient","resourceType":"Basic","id":"p"}`, `duplicate key "resourceType"`, false, "", ""},
		{"IDTraversal", `{"resourceType":"Patient","id":"../../etc/passwd"}`, "invalid id", false, "", ""},
		{"IDDotDot", `{"resourceType":"Patient","id":".."}`, "invalid id", false, "", ""},
		{"IDSlash", `{"resourceType":"Patient","id":"a/b"}`, "invalid id", false, "", ""},
		{"IDEscapedSlash", `{"resourceType":"Patient","id":"a\/b"}`, "invalid id", false, "", ""},
		{"IDBackslash", `{"resourceType":"Patient","id":"a\\b"}`, "invalid id", false, "", ""},
		{"IDNUL", `{"resourceType":"Patient","id":"a\u0000"}`, "invalid id", false, "", ""},
		{"IDPercent", `{"resourceType":"Patient","id":"%2e%2e"}`, "invalid id", false, "", ""},
		{"IDSpace", `{"resourceType":"Patient","id":"a b"}`, "invalid id", false, "", ""},
		{"IDLong", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 10000) + `"}`, "invalid id", false, "", ""},
		{"InvalidUTF8", "{\"resourceType\":\"Patient\",\"id\":\"p\",\"x\":\"\xed\xa0\x80\"}", "invalid UTF-8", true, "", ""},
		{"Overlong", "{\"resourceType\":\"Patient\",\"id\":\"p\",\"x\":\"\xc0\xaf\"}", "invalid UTF-8", true, "", ""},
		{"RawControl", "{\"resourceType\":\"Patient\",\"id\":\"p\",\"x\":\"a\tb\"}", "control character", true, "", ""},
		{"NaN", `{"resourceType":"Basic","id":"b","x":NaN}`, "unexpected character", true, "", ""},
		{"LeadingZero", `{"resourceType":"Basic","id":"b","x":007}`, "invalid JSON", true, "", ""},
		{"PatientRefTraversal", `{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/../Practitioner/x"}}`, "", false, "subject.reference: patient reference with an invalid id", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(where string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: %v", where, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: error %v, want one containing %q", where, err, want)
				case err != nil && !errors.Is(err, ErrInvalid):
					t.Errorf("%s: error %v does not match ErrInvalid", where, err)
				}
			}
			_, err := ParseHeader([]byte(tt.in))
			check("ParseHeader", err, tt.err)

			compErr := tt.compErr
			if tt.syntax {
				compErr = tt.err
			}
			if tt.err == "" || tt.syntax {
				_, err = Compartment("Observation", []byte(tt.in))
				check("Compartment", err, compErr)
			}

			syntaxErr := ""
			if tt.syntax {
				syntaxErr = tt.err
			}
			line, _, err := NewNDJSONReader(strings.NewReader(tt.in+"\n"), NDJSONOptions{}).Next()
			check("NDJSONReader", err, syntaxErr)
			if err == nil && string(line) != tt.in {
				t.Errorf("NDJSONReader changed the line")
			}
			c, err := Compact(nil, []byte(tt.in))
			check("Compact", err, syntaxErr)

			var got []byte
			_, err = ReadBundle(strings.NewReader(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":`+tt.in+`}]}`), func(e BundleEntry) error {
				got = e.Resource
				return nil
			})
			check("ReadBundle", err, tt.err)
			if err == nil && (!strings.Contains(string(got), tt.keep) || string(got) != string(c)) {
				t.Errorf("ReadBundle output %.80q differs from Compact or lost %q", got, tt.keep)
			}
		})
	}
}
