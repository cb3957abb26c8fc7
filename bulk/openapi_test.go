package bulk

import (
	"strings"
	"testing"

	"github.com/dtm-project/dtm/internal/openapitest"
)

// TestOpenAPI_Routes keeps docs/openapi.yaml and the server's routes in
// step: every route is documented with its method, and every documented
// /fhir/ operation is served.
func TestOpenAPI_Routes(t *testing.T) {
	docs := openapitest.Paths(t, "../docs/openapi.yaml")
	served := map[string]map[string]bool{}
	for _, rt := range NewServer(Config{}).routes() {
		if served[rt.pattern] == nil {
			served[rt.pattern] = map[string]bool{}
		}
		served[rt.pattern][rt.method] = true
		if !docs[rt.pattern][rt.method] {
			t.Errorf("%s %s is served but not documented in docs/openapi.yaml", rt.method, rt.pattern)
		}
	}
	for path, methods := range docs {
		if !strings.HasPrefix(path, "/fhir/") {
			continue
		}
		for m := range methods {
			if !served[path][m] {
				t.Errorf("%s %s is documented but not served", m, path)
			}
		}
	}
}
