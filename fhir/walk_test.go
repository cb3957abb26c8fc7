package fhir

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"testing"
)

// walkerCases are inputs on which walkObject and parseObject must agree.
var walkerCases = []string{
	`{}`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":"\u00e9\n\"","d":-0.5e+10}`,
	`{"a":"\ud800"}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":"` + "\x01" + `"}`,
	`{"a":"\` + "\x01" + `"}`, `{"a":"\` + "\xc3\xa9" + `"}`, "{\"a\":\"\xff\"}", "{\"a\":\"\\n\xff\"}",
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":1e+}`, `{"a":tru}`, `{"a":truex}`,
	`{"a":1,}`, `{"a":[1,]}`, `{,}`, `{"a" 1}`, `{"a":1} x`, `[]`, ``, `{"a":"b`, `{"a":"b\`,
	`{"a":"` + strings.Repeat("plain ascii!", 20) + `"}`, "{\"a\":\"" + strings.Repeat("Zoë ", 30) + "\"}",
	strings.Repeat(`{"a":`, 200) + `{}` + strings.Repeat(`}`, 200),
	strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200),
	strings.Repeat(`{"a":`, 199) + `[1]` + strings.Repeat(`}`, 199),
	strings.Repeat(`{"a":`, 199) + `[[]]` + strings.Repeat(`}`, 199),
	strings.Repeat(`[`, 300),
}

func TestWalkObject_MatchesScanner(t *testing.T) {
	for _, in := range walkerCases {
		_, serr := parseObject([]byte(in))
		werr := walkObject([]byte(in), nil)
		if (serr == nil) != (werr == nil) {
			t.Errorf("%.60q: parseObject err %v, walkObject err %v", in, serr, werr)
		}
	}
}

func TestPlain8(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b [8]byte
	for i := 0; i < 1_000_000; i++ {
		x := r.Uint64()
		if i%2 == 0 { // mostly printable ASCII, to reach the true branch
			x &= 0x7f7f7f7f7f7f7f7f
			x |= 0x2020202020202020
		}
		binary.LittleEndian.PutUint64(b[:], x)
		want := true
		for _, c := range b {
			want = want && plainByte[c]
		}
		if got := plain8(x); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
		}
	}
}

// FuzzWalkerMatchesScanner keeps the allocation-free walker in step with
// the scanner of scan.go: both must accept and reject the same inputs.
func FuzzWalkerMatchesScanner(f *testing.F) {
	for _, in := range walkerCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, serr := parseObject(data)
		werr := walkObject(data, nil)
		if (serr == nil) != (werr == nil) {
			t.Fatalf("parseObject err %v, walkObject err %v", serr, werr)
		}
	})
}

// scanRefs calls fn with the span (quotes included) of every string value
// of a member named "reference" in data.
func scanRefs(data []byte, fn func(start, end int) error) error {
	w := walker{data: data, refs: fn}
	return w.value(0)
}
