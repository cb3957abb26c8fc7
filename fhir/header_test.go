package fhir

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name, in string
		want     Header
		err      string // substring of the error; "" for success
	}{
		{"OK", `{"resourceType":"Patient","id":"p1","active":true}`, Header{"Patient", "p1"}, ""},
		{"OK/Blanks", " \n{ \"id\" : \"a-B.9\", \"resourceType\" : \"Observation\" }\r\n", Header{"Observation", "a-B.9"}, ""},
		{"OK/Id64", `{"resourceType":"Basic","id":"` + strings.Repeat("a", 64) + `"}`, Header{"Basic", strings.Repeat("a", 64)}, ""},
		{"OK/EscapedKey", `{"resource\u0054ype":"Flag","\u0069d":"f"}`, Header{"Flag", "f"}, ""},
		{"OK/EscapedValue", `{"resourceType":"Pa\u0074ient","id":"p\u0031"}`, Header{"Patient", "p1"}, ""},
		{"OK/UnknownAndProto", `{"__proto__":{"x":1},"constructor":"y","resourceType":"Basic","id":"b","zz":1e999999}`, Header{"Basic", "b"}, ""},
		{"ErrNotObject", `[{"resourceType":"Patient","id":"p"}]`, Header{}, "not a JSON object"},
		{"ErrNull", ` null`, Header{}, "not a JSON object"},
		{"ErrEmpty", ``, Header{}, "expected object"},
		{"ErrTrailing", `{"resourceType":"Patient","id":"p"} {}`, Header{}, "unexpected data after the object"},
		{"ErrSyntax", `{"resourceType":"Patient","id":"p",}`, Header{}, "invalid JSON at byte"},
		{"ErrUTF8", "{\"resourceType\":\"Patient\",\"id\":\"p\",\"name\":\"\xff\"}", Header{}, "invalid UTF-8"},
		{"ErrMissingType", `{"id":"p"}`, Header{}, "missing resourceType"},
		{"ErrTypeNotString", `{"resourceType":7,"id":"p"}`, Header{}, "resourceType is not a string"},
		{"ErrTypeNull", `{"resourceType":null,"id":"p"}`, Header{}, "resourceType is not a string"},
		{"ErrTypeEmpty", `{"resourceType":"","id":"p"}`, Header{}, "invalid resourceType: empty"},
		{"ErrTypeLower", `{"resourceType":"patient","id":"p"}`, Header{}, `invalid resourceType "patient": must match [A-Z][A-Za-z]{1,63}`},
		{"ErrTypeOneChar", `{"resourceType":"P","id":"p"}`, Header{}, "invalid resourceType"},
		{"ErrTypeDigit", `{"resourceType":"Patient2","id":"p"}`, Header{}, "invalid resourceType"},
		{"ErrMissingID", `{"resourceType":"Patient"}`, Header{}, "missing id"},
		{"ErrIDNotString", `{"resourceType":"Patient","id":12}`, Header{}, "id is not a string"},
		{"ErrIDEmpty", `{"resourceType":"Patient","id":""}`, Header{}, "invalid id: empty"},
		{"ErrIDSlash", `{"resourceType":"Patient","id":"a/b"}`, Header{}, `invalid id "a/b": must match [A-Za-z0-9-.]{1,64}`},
		{"ErrIDDotDot", `{"resourceType":"Patient","id":".."}`, Header{}, `invalid id "..": must not be "." or contain ".."`},
		{"ErrIDDot", `{"resourceType":"Patient","id":"."}`, Header{}, `must not be "."`},
		{"ErrIDDotDotInside", `{"resourceType":"Patient","id":"a..b"}`, Header{}, `contain ".."`},
		{"ErrIDSpace", `{"resourceType":"Patient","id":"a b"}`, Header{}, "invalid id"},
		{"ErrIDEncodedSlash", `{"resourceType":"Patient","id":"a%2Fb"}`, Header{}, "invalid id"},
		{"ErrIDBackslash", `{"resourceType":"Patient","id":"a\\b"}`, Header{}, "invalid id"},
		{"ErrIDUnicode", `{"resourceType":"Patient","id":"é"}`, Header{}, "invalid id"},
		{"ErrID65", `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, Header{}, "invalid id"},
		{"ErrDuplicateID", `{"resourceType":"Patient","id":"a","id":"b"}`, Header{}, `duplicate key "id"`},
		{"ErrDuplicateEscaped", `{"resourceType":"Patient","id":"a","\u0069d":"b"}`, Header{}, `duplicate key "id"`},
		{"ErrDuplicateOther", `{"resourceType":"Patient","id":"a","name":[],"name":[]}`, Header{}, `duplicate key "name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHeader([]byte(tt.in))
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseHeader = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ParseHeader error = %v; want it to contain %q", err, tt.err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestParseHeader_NoPatientData(t *testing.T) {
	// The error for a long bad id shows at most 64 bytes of it, and nothing
	// from the rest of the resource.
	secret := "Zoë Smith 1970-01-01 NHS 9434765919"
	in := `{"resourceType":"Patient","id":"` + strings.Repeat("x", 100) + `/","name":[{"text":"` + secret + `"}]}`
	_, err := ParseHeader([]byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), strings.Repeat("x", 65)) {
		t.Errorf("error leaks data: %v", err)
	}
	in = "{\"resourceType\":\"Patient\",\"id\":\"p\",\"name\":[{\"text\":\"" + secret + "\xff\"}]}"
	if _, err := ParseHeader([]byte(in)); err == nil || strings.Contains(err.Error(), "Smith") {
		t.Errorf("error = %v", err)
	}
}

func TestParseHeader_ManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Basic","id":"b"`)
	for i := 0; i < 5000; i++ {
		b.WriteString(`,"k` + strings.Repeat("x", i%7) + itoa(i) + `":1`)
	}
	if _, err := ParseHeader([]byte(b.String() + `}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHeader([]byte(b.String() + `,"k4998":2}`)); err == nil || !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("error = %v", err)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "A-1.b", "33f95545-e4cd-4535-a9ce-f91438f6f5ec", strings.Repeat("9", 64), ".a", "a."} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "../etc", "a/b", "a b", "a?b", "a#b", "a%2e", "a..b", strings.Repeat("9", 65), "é", "a\x00"} {
		if err := CheckID(id); err == nil {
			t.Errorf("CheckID(%q) = nil", id)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Patient","id":"p1","active":true}`))
	f.Add([]byte(`{"resource\u0054ype":"Flag","\u0069d":"f","x":[1.50,{"y":"\ud83d\ude00"}]}`))
	f.Add([]byte(`{"resourceType":"Patient","id":"a","id":"b"}`))
	f.Add([]byte(`{"resourceType":"Patient","id":"../x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		_, serr := parseObject(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			return
		}
		if serr != nil {
			t.Fatalf("ParseHeader accepted what parseObject rejects: %v", serr)
		}
		if CheckType(h.ResourceType) != nil || CheckID(h.ID) != nil {
			t.Fatalf("ParseHeader returned an invalid header %+v", h)
		}
		if _, err := Canonical(data); err != nil && !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("Canonical rejects a resource ParseHeader accepts: %v", err)
		}
	})
}
