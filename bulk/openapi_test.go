package bulk

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// documentedPaths scans docs/openapi.yaml and returns, for each path under
// "paths:", the HTTP methods documented for it (a line scan: paths are keys
// indented by two spaces, methods by four).
func documentedPaths(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	paths := map[string]map[string]bool{}
	inPaths, current := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && line[0] != ' ' && line[0] != '#':
			inPaths = false
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			current = strings.TrimSuffix(strings.TrimSpace(line), ":")
			paths[current] = map[string]bool{}
		case inPaths && current != "" && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			key, _, _ := strings.Cut(strings.TrimSpace(line), ":")
			switch key {
			case "get", "post", "put", "delete", "patch", "head":
				paths[current][strings.ToUpper(key)] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return paths
}

// TestOpenAPI_Routes keeps docs/openapi.yaml and the server's routes in
// step: every route is documented with its method, and every documented
// /fhir/ operation is served.
func TestOpenAPI_Routes(t *testing.T) {
	docs := documentedPaths(t)
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
