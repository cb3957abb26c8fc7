package bulk

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/dtm-project/dtm/storetest"
)

func TestBinary(t *testing.T) {
	e := newTestEnv(t, false, nil)
	content := "%PDF-1.4 hello, world"
	js := `{"resourceType":"Binary","id":"b1","contentType":"application/pdf","data":"` +
		base64.StdEncoding.EncodeToString([]byte(content)) + `"}`
	e.apply(pA, storetest.Upsert("Binary", "b1", "", []byte(js)))
	stored, err := e.db.Get(e.ctx, pA, "Binary", "b1")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK/Content", func(t *testing.T) {
		resp := e.do("GET", "/fhir/Binary/b1", nil)
		status, body := read(t, resp)
		if status != http.StatusOK || string(body) != content || resp.Header.Get("Content-Type") != "application/pdf" ||
			resp.Header.Get("ETag") != `"`+stored.Hash+`"` || resp.Header.Get("Content-Length") != "21" {
			t.Fatalf("%d %q %v", status, body, resp.Header)
		}
	})
	t.Run("OK/Range", func(t *testing.T) {
		resp := e.do("GET", "/fhir/Binary/b1", nil, "Range: bytes=9-13")
		status, body := read(t, resp)
		if status != http.StatusPartialContent || string(body) != "hello" ||
			resp.Header.Get("Content-Range") != "bytes 9-13/21" {
			t.Fatalf("%d %q %v", status, body, resp.Header)
		}
	})
	t.Run("OK/IfNoneMatch", func(t *testing.T) {
		resp := e.do("GET", "/fhir/Binary/b1", nil, `If-None-Match: "`+stored.Hash+`"`)
		if status, _ := read(t, resp); status != http.StatusNotModified {
			t.Fatalf("status %d, want 304", status)
		}
	})
	t.Run("OK/Resource", func(t *testing.T) {
		resp := e.do("GET", "/fhir/Binary/b1", nil, "Accept: application/fhir+json")
		status, body := read(t, resp)
		if status != http.StatusOK || string(body) != string(stored.JSON) || resp.Header.Get("Content-Type") != "application/fhir+json" {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		wantOutcome(t, e.do("GET", "/fhir/Binary/nope", nil), http.StatusNotFound, "Binary")
	})
	t.Run("ErrOtherPractice", func(t *testing.T) {
		e := newTestEnv(t, false, func(c *Config) {
			c.Caller = func(*http.Request) (string, []string) { return "c", []string{pB} }
		})
		e.apply(pA, storetest.Upsert("Binary", "b1", "", []byte(js)))
		wantOutcome(t, e.do("GET", "/fhir/Binary/b1", nil), http.StatusNotFound, "Binary")
	})
}

func TestMetadata(t *testing.T) {
	for _, auth := range []bool{false, true} {
		e := newTestEnv(t, false, func(c *Config) { c.RequiresAccessToken = auth })
		status, body := read(t, e.do("GET", "/fhir/metadata", nil))
		var cs struct {
			ResourceType, FHIRVersion, Kind, Date string
			Instantiates                          []string
			Rest                                  []struct {
				Security *struct {
					Service []struct{ Coding []struct{ Code string } }
				}
				Resource []struct {
					Type      string
					Operation []struct{ Name, Definition string }
				}
				Operation []struct{ Name, Definition string }
			}
		}
		if err := json.Unmarshal(body, &cs); err != nil || status != http.StatusOK {
			t.Fatalf("%d %v %s", status, err, body)
		}
		if cs.ResourceType != "CapabilityStatement" || cs.FHIRVersion != "4.0.1" || cs.Date == "" ||
			len(cs.Instantiates) != 1 || cs.Instantiates[0] != bulkCapability || len(cs.Rest) != 1 ||
			len(cs.Rest[0].Operation) != 1 || cs.Rest[0].Operation[0].Definition != opExportSystem {
			t.Fatalf("CapabilityStatement %s", body)
		}
		ops := map[string]string{}
		for _, r := range cs.Rest[0].Resource {
			for _, op := range r.Operation {
				ops[r.Type] = op.Definition
			}
		}
		if ops["Group"] != opExportGroup || ops["Patient"] != opExportPatient {
			t.Fatalf("operations %v", ops)
		}
		if gotAuth := cs.Rest[0].Security != nil && cs.Rest[0].Security.Service[0].Coding[0].Code == "SMART-on-FHIR"; gotAuth != auth {
			t.Fatalf("auth %v: security %s", auth, body)
		}
	}
}
