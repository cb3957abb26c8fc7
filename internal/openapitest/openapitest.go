// Package openapitest reads the paths and methods an OpenAPI document
// declares, so that tests can keep docs/openapi*.yaml and a server's routes
// in step.
package openapitest

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// Paths scans the OpenAPI document at file and returns, for each path under
// "paths:", the HTTP methods (upper case) documented for it. It is a line
// scan of the layout our documents use: paths are keys indented by two
// spaces, methods by four.
func Paths(tb testing.TB, file string) map[string]map[string]bool {
	tb.Helper()
	f, err := os.Open(file)
	if err != nil {
		tb.Fatal(err)
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
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("%s documents no paths", file)
	}
	return paths
}
