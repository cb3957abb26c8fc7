package fhir

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// entryString summarises an emitted entry for comparison.
func entryString(e BundleEntry) string {
	return fmt.Sprintf("%d %s %s/%s %s", e.Index, e.Method, e.ResourceType, e.ID, e.Resource)
}

func readBundleStrings(in string) (string, []string, error) {
	var got []string
	typ, err := ReadBundle(strings.NewReader(in), func(e BundleEntry) error {
		got = append(got, entryString(e))
		return nil
	})
	return typ, got, err
}

const (
	uA = "urn:uuid:0a0a0a0a-0000-4000-8000-00000000000a"
	uB = "urn:uuid:0b0b0b0b-0000-4000-8000-00000000000b"
)

func TestReadBundle(t *testing.T) {
	tests := []struct {
		name, in, typ string
		want          []string
	}{
		{"OK/PostURNForwardRef",
			`{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"` + uB + `","resource":{"resourceType":"Observation","subject":{"reference":"` + uA + `"},"valueQuantity":{"value":5.60}},"request":{"method":"POST","url":"Observation"}},
			{"fullUrl":"` + uA + `","resource":{"resourceType":"Patient","name":[{"text":"Zoë"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=x"}}]}`,
			"transaction", []string{
				`0 POST Observation/0b0b0b0b-0000-4000-8000-00000000000b {"resourceType":"Observation","id":"0b0b0b0b-0000-4000-8000-00000000000b","subject":{"reference":"Patient/0a0a0a0a-0000-4000-8000-00000000000a"},"valueQuantity":{"value":5.60}}`,
				`1 POST Patient/0a0a0a0a-0000-4000-8000-00000000000a {"resourceType":"Patient","id":"0a0a0a0a-0000-4000-8000-00000000000a","name":[{"text":"Zoë"}]}`,
			}},
		{"OK/PutDeleteTypeLast",
			`{"entry":[{"resource":{"resourceType":"Patient","active":false},"request":{"method":"PUT","url":"Patient/p1"}},
			{"request":{"method":"DELETE","url":"Observation/o1"}},
			{"resource":{"resourceType":"Flag","id":"f1"},"request":{"method":"PUT","url":"Flag/f1"}}],
			"type":"batch","resourceType":"Bundle"}`,
			"batch", []string{
				`0 PUT Patient/p1 {"resourceType":"Patient","id":"p1","active":false}`,
				`1 DELETE Observation/o1 `,
				`2 PUT Flag/f1 {"resourceType":"Flag","id":"f1"}`,
			}},
		{"OK/PutURNOtherID",
			`{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:ABC","resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient/p9"}},
			{"resource":{"resourceType":"Flag","id":"f","subject":{"reference":"urn:uuid:ABC"}},"request":{"method":"PUT","url":"Flag/f"}}]}`,
			"transaction", []string{
				`0 PUT Patient/p9 {"resourceType":"Patient","id":"p9"}`,
				`1 PUT Flag/f {"resourceType":"Flag","id":"f","subject":{"reference":"Patient/p9"}}`,
			}},
		{"OK/CycleAndOnlyReferences",
			`{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"` + uA + `","resource":{"resourceType":"Basic","author":{"reference":"` + uB + `"},"identifier":[{"value":"` + uB + `"}],"extension":[{"url":"` + uB + `","valueReference":{"reference":"` + uB + `"}}]},"request":{"method":"POST","url":"Basic"}},
			{"fullUrl":"` + uB + `","resource":{"resourceType":"Basic","author":{"reference":"urn:uuid:0a0a0a0a-\u0030000-4000-8000-00000000000a"},"text":{"div":"<div>` + uA + `</div>"}},"request":{"method":"POST","url":"Basic"}}]}`,
			"transaction", []string{
				`0 POST Basic/0a0a0a0a-0000-4000-8000-00000000000a {"resourceType":"Basic","id":"0a0a0a0a-0000-4000-8000-00000000000a","author":{"reference":"Basic/0b0b0b0b-0000-4000-8000-00000000000b"},"identifier":[{"value":"` + uB + `"}],"extension":[{"url":"` + uB + `","valueReference":{"reference":"Basic/0b0b0b0b-0000-4000-8000-00000000000b"}}]}`,
				`1 POST Basic/0b0b0b0b-0000-4000-8000-00000000000b {"resourceType":"Basic","id":"0b0b0b0b-0000-4000-8000-00000000000b","author":{"reference":"Basic/0a0a0a0a-0000-4000-8000-00000000000a"},"text":{"div":"<div>` + uA + `</div>"}}`,
			}},
		{"OK/CollectionPrettyBOMCRLF",
			"\xef\xbb\xbf{\r\n  \"resourceType\" : \"Bundle\" ,\r\n  \"type\" : \"collection\",\r\n  \"entry\" : [ {\r\n    \"fullUrl\" : \"http://x/Patient/p1\",\r\n    \"resource\" : { \"resourceType\" : \"Patient\", \"id\" : \"p1\", \"n\" : [ 1e999999, " + strings.Repeat("9", 400) + ", -0.0 ], \"s\" : \"a  b\\u00e9\\\"\" }\r\n  } ]\r\n}\r\n",
			"collection", []string{
				`0  Patient/p1 {"resourceType":"Patient","id":"p1","n":[1e999999,` + strings.Repeat("9", 400) + `,-0.0],"s":"a  b\u00e9\""}`,
			}},
		{"OK/SearchsetAndUnknownElements",
			`{"resourceType":"Bundle","id":"s","meta":{"lastUpdated":"2020-01-01T00:00:00Z"},"type":"searchset","total":1,"link":[{"relation":"self","url":"http://x?a=b"}],"entry":[{"fullUrl":"http://x/Patient/p","resource":{"resourceType":"Patient","id":"p","__proto__":{"constructor":"x"}},"search":{"mode":"match"}}],"signature":{"data":"xx"}}`,
			"searchset", []string{`0  Patient/p {"resourceType":"Patient","id":"p","__proto__":{"constructor":"x"}}`}},
		{"OK/HistoryDuplicates",
			`{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p"}},{"request":{"method":"DELETE","url":"Patient/p"}}]}`,
			"history", []string{`0 PUT Patient/p {"resourceType":"Patient","id":"p"}`, `1 DELETE Patient/p `}},
		{"OK/NoEntries", `{"resourceType":"Bundle","type":"transaction","entry":[]}`, "transaction", nil},
		{"OK/NoEntryElement", `{"type":"batch","resourceType":"Bundle"}`, "batch", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, got, err := readBundleStrings(tt.in)
			if err != nil || typ != tt.typ {
				t.Fatalf("ReadBundle = %q, %v", typ, err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestReadBundle_Err(t *testing.T) {
	post := func(fullURL, res string) string {
		return `{"fullUrl":"` + fullURL + `","resource":` + res + `,"request":{"method":"POST","url":"Basic"}}`
	}
	tx := func(entries ...string) string {
		return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
	}
	tests := []struct {
		name, in string
		kind     error
		index    int // entry index of an *EntryError, -1 for a Bundle-level error
		msg      string
	}{
		{"ErrNotObject", `[]`, ErrInvalid, -1, "expected a Bundle object"},
		{"ErrEmpty", ``, ErrInvalid, -1, "unexpected end of input"},
		{"ErrNotBundle", `{"resourceType":"Patient","id":"p"}`, ErrInvalid, -1, `resourceType is "Patient", want "Bundle"`},
		{"ErrNoResourceType", `{"type":"batch","entry":[]}`, ErrInvalid, -1, "missing resourceType"},
		{"ErrNoType", `{"resourceType":"Bundle","entry":[]}`, ErrInvalid, -1, "missing type"},
		{"ErrDocument", `{"resourceType":"Bundle","type":"document","entry":[]}`, ErrNotSupported, -1, `bundle type "document" is not supported`},
		{"ErrDuplicateEntry", `{"resourceType":"Bundle","type":"batch","entry":[],"entry":[]}`, ErrInvalid, -1, `duplicate key "entry"`},
		{"ErrEntryNotArray", `{"resourceType":"Bundle","type":"batch","entry":{}}`, ErrInvalid, -1, "expected entry to be an array"},
		{"ErrTrailing", `{"resourceType":"Bundle","type":"batch"} {}`, ErrInvalid, -1, "unexpected data after the Bundle"},
		{"ErrTruncated", `{"resourceType":"Bundle","type":"batch","entry":[{"resource":`, ErrInvalid, -1, "unexpected end of input"},
		{"ErrBadScalar", `{"resourceType":"Bundle","type":"batch","total":12ab}`, ErrInvalid, -1, `bundle element "total"`},
		{"ErrDuplicateEntryAfterManyKeys", `{"resourceType":"Bundle","type":"batch",` + manyKeys(100) + `"entry":[],"entry":[]}`, ErrInvalid, -1, `duplicate key "entry"`},
		{"ErrBadOtherElement", `{"resourceType":"Bundle","type":"batch","link":[1,]}`, ErrInvalid, -1, `bundle element "link"`},
		{"ErrEntryNotObject", tx(`1`), ErrInvalid, 0, "expected object"},
		{"ErrEntrySyntax", tx(`{"request":{"method":"DELETE","url":"Patient/p"},}`), ErrInvalid, 0, "invalid JSON"},
		{"ErrEntryUTF8", tx(post(uA, "{\"resourceType\":\"Basic\",\"x\":\"\xff\"}")), ErrInvalid, 0, "invalid UTF-8"},
		{"ErrEntryDuplicateKey", tx(`{"request":{"method":"DELETE","url":"Patient/p"},"request":{"method":"DELETE","url":"Patient/q"}}`), ErrInvalid, 0, `duplicate key "request"`},
		{"ErrResourceDuplicateKey", tx(post(uA, `{"resourceType":"Basic","id":"a","id":"b"}`)), ErrInvalid, 0, `duplicate key "id"`},
		{"ErrDeepNesting", tx(post(uA, `{"resourceType":"Basic","x":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`)), ErrInvalid, 0, "nesting deeper than 200"},
		{"ErrPostNoURN", tx(post("http://x/Basic/1", `{"resourceType":"Basic"}`)), ErrInvalid, 0, "needs a urn:uuid fullUrl"},
		{"ErrPostNoFullURL", tx(`{"resource":{"resourceType":"Basic"},"request":{"method":"POST","url":"Basic"}}`), ErrInvalid, 0, "needs a urn:uuid fullUrl"},
		{"ErrPostBadURNID", tx(post("urn:uuid:a/b", `{"resourceType":"Basic"}`)), ErrInvalid, 0, "fullUrl cannot serve as id"},
		{"ErrPostURLType", tx(post(uA, `{"resourceType":"Flag"}`)), ErrInvalid, 0, `POST request.url must be the resource type "Flag"`},
		{"ErrPostNoResource", tx(`{"fullUrl":"` + uA + `","request":{"method":"POST","url":"Basic"}}`), ErrInvalid, 0, "POST without a resource"},
		{"ErrPutIDMismatch", tx(`{"resource":{"resourceType":"Patient","id":"p2"},"request":{"method":"PUT","url":"Patient/p1"}}`), ErrInvalid, 0, `resource id "p2" does not match request.url id "p1"`},
		{"ErrPutTypeMismatch", tx(`{"resource":{"resourceType":"Patient","id":"p1"},"request":{"method":"PUT","url":"Flag/p1"}}`), ErrInvalid, 0, "does not match resourceType"},
		{"ErrPutPathID", tx(`{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient/../admin"}}`), ErrInvalid, 0, "PUT request.url must be Type/id"},
		{"ErrPutDotDot", tx(`{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient/.."}}`), ErrInvalid, 0, `must not be "." or contain ".."`},
		{"ErrPutConditional", tx(`{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"}}`), ErrNotSupported, 0, "conditional PUT is not supported"},
		{"ErrDeleteConditional", tx(`{"request":{"method":"DELETE","url":"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"}}`), ErrNotSupported, 0, "conditional DELETE is not supported"},
		{"ErrGet", tx(`{"request":{"method":"GET","url":"Patient/p"}}`), ErrNotSupported, 0, "request method GET is not supported"},
		{"ErrMethod", tx(`{"request":{"method":"put","url":"Patient/p"}}`), ErrInvalid, 0, `invalid request method "put"`},
		{"ErrRequestNoURL", tx(`{"request":{"method":"DELETE"}}`), ErrInvalid, 0, "request needs a method and a url"},
		{"ErrNoRequestInTransaction", tx(`{"resource":{"resourceType":"Patient","id":"p"}}`), ErrInvalid, 0, "missing request in a transaction Bundle"},
		{"ErrCollectionNoID", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`, ErrInvalid, 0, "missing id"},
		{"ErrNothing", tx(`{}`), ErrInvalid, 0, "entry has neither resource nor request"},
		{"ErrUnknownURN", tx(post(uA, `{"resourceType":"Basic"}`), post(uB, `{"resourceType":"Basic","author":{"reference":"urn:uuid:0c0c0c0c-0000-4000-8000-00000000000c"}}`)), ErrInvalid, 1, `reference to unknown fullUrl "urn:uuid:0c0c0c0c-0000-4000-8000-00000000000c"`},
		{"ErrDuplicateFullURL", tx(post(uA, `{"resourceType":"Basic"}`), post(uA, `{"resourceType":"Basic","id":"x"}`)), ErrInvalid, 1, "duplicate fullUrl"},
		{"ErrDuplicateResource", tx(post(uA, `{"resourceType":"Basic"}`), `{"request":{"method":"DELETE","url":"Basic/0a0a0a0a-0000-4000-8000-00000000000a"}}`), ErrInvalid, 1, `"Basic/0a0a0a0a-0000-4000-8000-00000000000a" is also written by entry 0`},
		{"ErrDuplicateResourceIDs", tx(`{"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p"}}`, `{"resource":{"resourceType":"Patient","id":"p"},"request":{"method":"PUT","url":"Patient/p"}}`), ErrInvalid, 1, "is also written by entry 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := 0
			_, err := ReadBundle(strings.NewReader(tt.in), func(BundleEntry) error { called++; return nil })
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !errors.Is(err, tt.kind) {
				t.Fatalf("ReadBundle error = %v; want %v containing %q", err, tt.kind, tt.msg)
			}
			var ee *EntryError
			if errors.As(err, &ee) != (tt.index >= 0) || (ee != nil && ee.Index != tt.index) {
				t.Errorf("error %v: want entry index %d", err, tt.index)
			}
			if called != 0 {
				t.Errorf("fn called %d times for an invalid Bundle", called)
			}
			if strings.Contains(err.Error(), "9434765919") {
				t.Errorf("error leaks an NHS number: %v", err)
			}
		})
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	return b.String()
}

func TestReadBundle_EntryTooLarge(t *testing.T) {
	in := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Patient/p"}},{"resource":{"resourceType":"Basic","id":"b","x":"` + strings.Repeat("x", 2000) + `"},"request":{"method":"PUT","url":"Basic/b"}}]}`
	_, err := ReadBundleWith(strings.NewReader(in), BundleOptions{MaxEntryBytes: 1000}, func(BundleEntry) error { return nil })
	var ee *EntryError
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &ee) || ee.Index != 1 || !strings.Contains(err.Error(), "entry exceeds 1000 bytes") {
		t.Fatalf("error = %v", err)
	}
	in = `{"resourceType":"Bundle","type":"batch","link":"` + strings.Repeat("x", 2000) + `"}`
	_, err = ReadBundleWith(strings.NewReader(in), BundleOptions{MaxEntryBytes: 1000}, func(BundleEntry) error { return nil })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `bundle element "link" exceeds 1000 bytes`) {
		t.Fatalf("error = %v", err)
	}
}

func TestReadBundle_FnError(t *testing.T) {
	stop := errors.New("stop")
	in := `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"DELETE","url":"Patient/a"}},{"request":{"method":"DELETE","url":"Patient/b"}}]}`
	calls := 0
	_, err := ReadBundle(strings.NewReader(in), func(BundleEntry) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("ReadBundle = %v after %d calls; want fn's error after 1", err, calls)
	}
}

// onlyReader hides every method but Read, as a network body does.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestReadBundle_NotSeekable(t *testing.T) {
	path := sharedData(t, "synthea-20/patient-33f95545-e4cd-4535-a9ce-f91438f6f5ec.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(r io.Reader, opts BundleOptions) []string {
		var got []string
		if _, err := ReadBundleWith(r, opts, func(e BundleEntry) error {
			got = append(got, entryString(e))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := collect(bytes.NewReader(data), BundleOptions{})

	tmp := t.TempDir()
	if got := collect(onlyReader{bytes.NewReader(data)}, BundleOptions{TempDir: tmp}); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Error("spooled read differs from seekable read")
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	zr, err := gzip.NewReader(&gz)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(zr, BundleOptions{TempDir: tmp}); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Error("gzip read differs from seekable read")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spool files left behind: %v", left)
	}

	// A seekable reader is read from its current offset.
	r := bytes.NewReader(append([]byte("junk"), data...))
	r.Seek(4, io.SeekStart)
	if got := collect(r, BundleOptions{}); len(got) != len(want) {
		t.Errorf("read %d entries from offset 4, want %d", len(got), len(want))
	}

	// Spooling to a directory that does not exist fails cleanly.
	_, err = ReadBundleWith(onlyReader{bytes.NewReader(data)}, BundleOptions{TempDir: tmp + "/nope"}, func(BundleEntry) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "spool bundle") {
		t.Errorf("error = %v", err)
	}
}

func FuzzReadBundle(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"` + uA + `","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"` + uB + `","resource":{"resourceType":"Flag","subject":{"reference":"` + uA + `"}},"request":{"method":"POST","url":"Flag"}}]}`))
	f.Add([]byte(`{"entry":[{"request":{"method":"DELETE","url":"Patient/p"}},{"resource":{"resourceType":"Patient","x":[1.50,"\u00e9"]},"request":{"method":"PUT","url":"Patient/q"}}],"type":"batch","resourceType":"Bundle"}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"p"}}]}`))
	f.Add([]byte("\xef\xbb\xbf{\"resourceType\":\"Bundle\",\"type\":\"history\",\"entry\":[ ]}"))
	spool := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		var seekable []string
		typ, err := ReadBundle(bytes.NewReader(data), func(e BundleEntry) error {
			seekable = append(seekable, entryString(e))
			if e.Method == "DELETE" {
				if e.Resource != nil || CheckID(e.ID) != nil || CheckType(e.ResourceType) != nil {
					t.Fatalf("bad DELETE entry %+v", e)
				}
				return nil
			}
			h, err := ParseHeader(e.Resource)
			if err != nil || h.ResourceType != e.ResourceType || h.ID != e.ID {
				t.Fatalf("emitted resource %q: header %+v, %v", e.Resource, h, err)
			}
			return scanRefs(e.Resource, func(start, end int) error {
				if strings.HasPrefix(stringValue(e.Resource[start:end]), urnUUID) {
					t.Fatalf("urn:uuid reference left in %q", e.Resource)
				}
				return nil
			})
		})
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrNotSupported) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if seekable != nil {
				t.Fatalf("fn called for an invalid Bundle: %v", err)
			}
		} else if typ == "" {
			t.Fatal("no type")
		}
		var spooled []string
		typ2, err2 := ReadBundleWith(onlyReader{bytes.NewReader(data)}, BundleOptions{TempDir: spool}, func(e BundleEntry) error {
			spooled = append(spooled, entryString(e))
			return nil
		})
		if typ2 != typ || (err == nil) != (err2 == nil) || strings.Join(spooled, "\n") != strings.Join(seekable, "\n") {
			t.Fatalf("seekable and spooled reads differ: %v / %v", err, err2)
		}
	})
}
