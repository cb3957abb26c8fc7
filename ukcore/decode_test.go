package ukcore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeObjectStd is the reference decodeObject must match: encoding/json's
// Decoder with UseNumber, the object followed by white space only.
func decodeObjectStd(data []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, false
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return nil, false
	}
	return obj, true
}

// decodeCases are inputs on which a hand-written JSON decoder is most
// likely to part from encoding/json.
var decodeCases = []string{
	`{}`, ` {} `, "\t{\r\n}\n", `{"a":1}`, `{"a":1,}`, `{,"a":1}`, `{"a" 1}`, `{"a":}`, `{"a":1 "b":2}`,
	`{"a":1}x`, `{"a":1}{}`, `{"a":1} ` + "\u00a0\u0085\v\f", `{"a":1}` + "\x00", `{`, `}`, `{"a`, `{"a":"b`,
	`[]`, `[{}]`, `null`, `"x"`, `1`, `true`, ``, `   `, `{"a":[]}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[1 2]}`,
	`{"a":[[[]]],"b":{"c":{}}}`, `{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`,
	`{"n":0}`, `{"n":-0}`, `{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":+1}`, `{"n":1e}`, `{"n":1e+}`,
	`{"n":1E-07}`, `{"n":-12.50e+3}`, `{"n":12345678901234567890123456789}`, `{"n":0.0000000000000000001}`,
	`{"n":1.5.5}`, `{"n":0x10}`, `{"n":NaN}`, `{"n":Infinity}`,
	`{"t":true,"f":false,"z":null}`, `{"t":tru}`, `{"t":truee}`, `{"z":nul}`, `{"z":NULL}`,
	`{"s":"a\"b\\c\/d\be\ff\ng\rh\ti"}`, `{"s":"\u00e9\u20AC"}`, `{"s":"\ud83d\ude00"}`, `{"s":"\ud83d"}`,
	`{"s":"\ude00"}`, `{"s":"\ud83dx"}`, `{"s":"\ud83d\u0041"}`, `{"s":"\ud800\ud800\udc00"}`, `{"s":"\u12"}`,
	`{"s":"\u12g4"}`, `{"s":"\x41"}`, `{"s":"\'"}`, `{"s":"\a"}`, `{"s":"a` + "\x01" + `"}`, `{"s":"tab	in"}`,
	`{"s":"\u0000"}`, `{"s":"` + "\xff\xfe" + `"}`, `{"s":"` + "caf\xc3" + `"}`, `{"s":"` + "\xef\xbf\xbd" + `"}`,
	`{"s":"` + "\xed\xa0\x80" + `"}`, `{"s":"` + "\xf4\x90\x80\x80" + `"}`, `{"s":"` + "\x7f" + `"}`,
	`{"` + "\xff" + `":1}`, `{"k\u0041":1,"kA":2}`, `{"s":"é€😀"}`, "{\"a\":1}\n\n", "\ufeff{}",
	`{"resourceType":"Patient","id":"p1","name":[{"family":"Smith","given":["A","B"]}],"birthDate":"1970-01-01"}`,
}

// TestDecodeObject_MatchesEncodingJSON checks decodeObject against
// encoding/json on inputs that exercise every branch of the grammar.
func TestDecodeObject_MatchesEncodingJSON(t *testing.T) {
	cases := append([]string(nil), decodeCases...)
	deep := strings.Repeat(`{"a":`, decodeMaxDepth-1) + "1" + strings.Repeat("}", decodeMaxDepth-1)
	cases = append(cases, deep, `{"a":`+deep+`}`, `{"a":`+strings.Repeat("[", decodeMaxDepth)+strings.Repeat("]", decodeMaxDepth)+`}`)
	for _, c := range cases {
		got, gotOK := decodeObject([]byte(c))
		want, wantOK := decodeObjectStd([]byte(c))
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeObject(%.60q) = %v, %v; encoding/json gives %v, %v", c, got, gotOK, want, wantOK)
		}
	}
}

// TestDecodeObject_Types checks the Go types of decoded values: the rules
// walker switches on them.
func TestDecodeObject_Types(t *testing.T) {
	obj, ok := decodeObject([]byte(`{"o":{},"a":[],"s":"x","n":1.50,"b":false,"z":null}`))
	if !ok {
		t.Fatal("not decoded")
	}
	want := map[string]any{"o": map[string]any{}, "a": []any{}, "s": "x", "n": json.Number("1.50"), "b": false, "z": nil}
	if !reflect.DeepEqual(obj, want) {
		t.Fatalf("got %#v, want %#v", obj, want)
	}
}

// FuzzDecodeObject checks that decodeObject accepts and rejects exactly
// what encoding/json does, with the same result.
// Run: go test ./ukcore/ -run '^$' -fuzz FuzzDecodeObject -fuzztime 60s
func FuzzDecodeObject(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	for _, s := range []string{goodPatient, goodObservation, goodCondition, goodMedicationRequest} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotOK := decodeObject(data)
		want, wantOK := decodeObjectStd(data)
		if gotOK != wantOK || !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeObject = %v, %v; encoding/json gives %v, %v", got, gotOK, want, wantOK)
		}
	})
}
