package fhir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// got is one result of NDJSONReader.Next, for comparing sequences.
type got struct {
	Line string
	No   int
	Err  string
}

func readAll(t *testing.T, in string, opts NDJSONOptions) []got {
	t.Helper()
	r := NewNDJSONReader(strings.NewReader(in), opts)
	var out []got
	for i := 0; i < 100; i++ {
		line, no, err := r.Next()
		if err == io.EOF {
			return out
		}
		g := got{Line: string(line), No: no}
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line != no {
				t.Fatalf("error %v is not a *LineError for line %d", err, no)
			}
			g.Err = err.Error()
		}
		out = append(out, g)
	}
	t.Fatal("reader does not end")
	return nil
}

func TestNDJSONReader(t *testing.T) {
	a, b := `{"resourceType":"Patient","id":"a"}`, `{"resourceType":"Patient","id":"b","x":5.60}`
	tests := []struct {
		name, in string
		want     []got
	}{
		{"OK", a + "\n" + b + "\n", []got{{a, 1, ""}, {b, 2, ""}}},
		{"OK/CRLF", a + "\r\n" + b + "\r\n", []got{{a, 1, ""}, {b, 2, ""}}},
		{"OK/NoFinalNewline", a + "\n" + b, []got{{a, 1, ""}, {b, 2, ""}}},
		{"OK/NoFinalNewlineCR", a + "\n" + b + "\r", []got{{a, 1, ""}, {b, 2, ""}}},
		{"OK/BlankLines", "\n\n" + a + "\n  \t\n\r\n" + b + "\n\n", []got{{a, 3, ""}, {b, 6, ""}}},
		{"OK/BOM", "\xef\xbb\xbf" + a + "\n" + b, []got{{a, 1, ""}, {b, 2, ""}}},
		{"OK/Empty", "", nil},
		{"OK/OnlyBlank", "\n \n\r\n", nil},
		{"OK/InnerBlanks", " { \"a\" : [ 1 , 2 ] } \n", []got{{` { "a" : [ 1 , 2 ] } `, 1, ""}}},
		{"ErrInvalidUTF8", a + "\n{\"resourceType\":\"Patient\",\"id\":\"c\",\"n\":\"\xc3\x28\"}\n" + b, []got{{a, 1, ""}, {"", 2, "line 2: invalid JSON at byte 40: invalid UTF-8 in string"}, {b, 3, ""}}},
		{"ErrInvalidUTF8Outside", "{\"a\":1}\xff\n", []got{{"", 1, "line 1: invalid JSON at byte 7: unexpected data after the object"}}},
		{"ErrArray", "[" + a + "]\n" + b, []got{{"", 1, "line 1: not a JSON object"}, {b, 2, ""}}},
		{"ErrString", `"x"` + "\n", []got{{"", 1, "line 1: not a JSON object"}}},
		{"ErrTwoObjects", a + " " + b + "\n", []got{{"", 1, "unexpected data after the object"}}},
		{"ErrTruncated", a + "\n" + `{"resourceType":"Pat`, []got{{a, 1, ""}, {"", 2, "line 2: invalid JSON at byte 20: unterminated string"}}},
		{"ErrPrettyPrinted", "{\n\"a\":1\n}\n", []got{{"", 1, "line 1: invalid JSON at byte 1: expected string"}, {"", 2, "not a JSON object"}, {"", 3, "not a JSON object"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := readAll(t, tt.in, NDJSONOptions{})
			ok := len(g) == len(tt.want)
			for i := 0; ok && i < len(g); i++ {
				ok = g[i].Line == tt.want[i].Line && g[i].No == tt.want[i].No &&
					(g[i].Err == "") == (tt.want[i].Err == "") && strings.Contains(g[i].Err, tt.want[i].Err)
			}
			if !ok {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestNDJSONReader_LineTooLong(t *testing.T) {
	a := `{"resourceType":"Basic","id":"a"}`
	long := `{"resourceType":"Basic","id":"b","x":"` + strings.Repeat("y", 100) + `"}`
	for _, max := range []int{len(long) - 1, len(long) - 2} {
		for _, sep := range []string{"\n", "\r\n"} {
			in := a + sep + long + sep + a + sep + long
			g := readAll(t, in, NDJSONOptions{MaxLineBytes: max})
			want := fmt.Sprint([]got{{a, 1, ""}, {"", 2, "line 2: line exceeds " + formatSize(max)}, {a, 3, ""}, {"", 4, "line 4: line exceeds " + formatSize(max)}})
			if fmt.Sprint(g) != want {
				t.Errorf("max %d sep %q:\ngot  %+v\nwant %s", max, sep, g, want)
			}
		}
	}
	// Exactly at the limit is fine, with either line ending.
	for _, sep := range []string{"\n", "\r\n", ""} {
		g := readAll(t, long+sep, NDJSONOptions{MaxLineBytes: len(long)})
		if len(g) != 1 || g[0].Err != "" {
			t.Errorf("sep %q: %+v", sep, g)
		}
	}
	_, _, err := NewNDJSONReader(strings.NewReader(long), NDJSONOptions{MaxLineBytes: 10}).Next()
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not match ErrTooLarge only", err)
	}
}

// hugeLine streams a JSON object line of n bytes followed by tail, without
// holding it in memory.
type hugeLine struct {
	head, tail []byte
	n, off     int
}

func newHugeLine(n int, tail string) *hugeLine {
	return &hugeLine{head: []byte(`{"resourceType":"Binary","id":"big","data":"`), tail: []byte(`"}` + "\n" + tail), n: n}
}

func (h *hugeLine) Read(p []byte) (int, error) {
	total := h.n - 2 + len(h.tail)
	if h.off >= total {
		return 0, io.EOF
	}
	i := 0
	for ; i < len(p) && h.off < total; i, h.off = i+1, h.off+1 {
		switch {
		case h.off < len(h.head):
			p[i] = h.head[h.off]
		case h.off < h.n-2:
			p[i] = 'A'
		default:
			p[i] = h.tail[h.off-(h.n-2)]
		}
	}
	return i, nil
}

func TestNDJSONReader_HugeLineMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a 70 MiB line")
	}
	good := `{"resourceType":"Patient","id":"after"}`
	for _, tc := range []struct {
		name     string
		max      int
		maxAlloc uint64 // bytes the reader may allocate while reading
	}{
		// The line is buffered up to the limit before it is known to be too
		// long (growing by doubling), so allocation is bounded by twice the
		// limit whatever the length of the line.
		{"Max64MiB", DefaultMaxLineBytes, 2*DefaultMaxLineBytes + 8<<20},
		// With a small limit, memory stays well under the line size.
		{"Max1MiB", 1 << 20, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := NewNDJSONReader(newHugeLine(70<<20, good+"\n"), NDJSONOptions{MaxLineBytes: tc.max})
			_, no, err := r.Next()
			var le *LineError
			if !errors.As(err, &le) || no != 1 || !strings.Contains(err.Error(), "line 1: line exceeds "+formatSize(tc.max)) {
				t.Fatalf("Next = line %d, %v; want line 1 too long", no, err)
			}
			line, no, err := r.Next()
			if err != nil || no != 2 || string(line) != good {
				t.Fatalf("Next = %q, %d, %v; want the good line 2", line, no, err)
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next = %v, want io.EOF", err)
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %.1f MiB reading a 70 MiB line with a %s limit", float64(alloc)/(1<<20), formatSize(tc.max))
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes, want at most %d", alloc, tc.maxAlloc)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if after.HeapAlloc > before.HeapAlloc+8<<20 {
				t.Errorf("heap grew from %d to %d bytes: the big buffer is retained", before.HeapAlloc, after.HeapAlloc)
			}
			runtime.KeepAlive(r)
		})
	}
}

func TestNDJSONReader_ReadError(t *testing.T) {
	boom := errors.New("boom")
	r := NewNDJSONReader(io.MultiReader(strings.NewReader("{}\n{\"a\""), iotest.ErrReader(boom)), NDJSONOptions{})
	if line, no, err := r.Next(); err != nil || no != 1 || string(line) != "{}" {
		t.Fatalf("Next = %q, %d, %v", line, no, err)
	}
	for i := 0; i < 2; i++ {
		_, _, err := r.Next()
		var le *LineError
		if !errors.Is(err, boom) || errors.As(err, &le) {
			t.Fatalf("Next = %v; want the read error, not a LineError", err)
		}
	}
}

func TestNDJSONReader_KeepsBytes(t *testing.T) {
	in := `{"resourceType":"Observation","id":"o","valueQuantity":{"value":5.60},"n":1e999999,"big":` + strings.Repeat("9", 400) + `,"s":"Zoë \u00e9 \ud83d\ude00 \/"}`
	line, _, err := NewNDJSONReader(strings.NewReader(in+"\n"), NDJSONOptions{}).Next()
	if err != nil || string(line) != in {
		t.Fatalf("Next = %q, %v", line, err)
	}
}

func TestCompact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{}`, `{}`},
		{" {\n  \"a\" : [ 1 , 2.50 , 1e999999 ] ,\r\n\t\"b\" : \"x y\\\" z\\n\" } ", `{"a":[1,2.50,1e999999],"b":"x y\" z\n"}`},
		{`{"s":"  spaced  ","u":"\u00e9 Zoë \/","e":"\\"}`, `{"s":"  spaced  ","u":"\u00e9 Zoë \/","e":"\\"}`},
		{` "x" `, `"x"`},
		{` [ true , false , null ] `, `[true,false,null]`},
		{`-0.0E+00`, `-0.0E+00`},
	}
	for _, tt := range tests {
		got, err := Compact([]byte("prefix:"), []byte(tt.in))
		if err != nil || string(got) != "prefix:"+tt.want {
			t.Errorf("Compact(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{``, ` `, `{"a":1,}`, `{} {}`, "\"\xff\"", `01`, strings.Repeat("[", 300) + strings.Repeat("]", 300)} {
		got, err := Compact([]byte("p"), []byte(in))
		if err == nil || string(got) != "p" || !errors.Is(err, ErrInvalid) {
			t.Errorf("Compact(%.40q) = %q, %v; want an ErrInvalid error and dst unchanged", in, got, err)
		}
	}
}

func FuzzNDJSONReader(f *testing.F) {
	f.Add([]byte("{\"resourceType\":\"Patient\",\"id\":\"a\"}\r\n\n{\"x\":[1,2]}\n[1]\n\xff\n{"), 0)
	f.Add([]byte("\xef\xbb\xbf{}\n \n{\"a\":\"\\u00e9\"}"), 8)
	f.Add([]byte(strings.Repeat("{\"a\":\"bbbbbbbb\"}\n", 10)), 12)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = (max%64+64)%64 + 1
		r := NewNDJSONReader(bytes.NewReader(data), NDJSONOptions{MaxLineBytes: max})
		last := 0
		for i := 0; ; i++ {
			line, no, err := r.Next()
			if err == io.EOF {
				return
			}
			if no <= last || i > len(data)+1 {
				t.Fatalf("line numbers not increasing: %d after %d", no, last)
			}
			last = no
			if err != nil {
				var le *LineError
				if !errors.As(err, &le) || !(errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge)) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if len(line) > max || bytes.ContainsAny(line, "\n") {
				t.Fatalf("bad line %q", line)
			}
			if _, err := parseObject(line); err != nil {
				t.Fatalf("returned line %q is not a JSON object: %v", line, err)
			}
			c, err := Compact(nil, line)
			if err != nil {
				t.Fatalf("Compact: %v", err)
			}
			h1, err1 := ContentHash(line)
			h2, err2 := ContentHash(c)
			if h1 != h2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("Compact changed the content: %q -> %q", line, c)
			}
		}
	})
}
