package target

import (
	"testing"

	"github.com/dtm-project/dtm/internal/openapitest"
)

// TestServer_OpenAPI keeps docs/openapi-target.yaml and the server's
// routes in step, both ways (/metrics and /healthz are added by dtm target
// serve).
func TestServer_OpenAPI(t *testing.T) {
	docs := openapitest.Paths(t, "../docs/openapi-target.yaml")
	served := map[string]bool{"GET /metrics": true, "GET /healthz": true}
	for _, rt := range (&Server{}).routes() {
		served[rt.method+" "+rt.pattern] = true
		if !docs[rt.pattern][rt.method] {
			t.Errorf("%s %s is served but not documented in docs/openapi-target.yaml", rt.method, rt.pattern)
		}
	}
	for path, methods := range docs {
		for m := range methods {
			if !served[m+" "+path] {
				t.Errorf("%s %s is documented but not served", m, path)
			}
		}
	}
}
