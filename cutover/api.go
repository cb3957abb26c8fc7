package cutover

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// summariseAPI extracts the API's technical details (A1) from the OpenAPI
// document (a line scan of its info and paths, as bulk's route test does)
// and the CapabilityStatement.
func summariseAPI(openapi, capability []byte, capSource string) APISummary {
	var a APISummary
	sc := bufio.NewScanner(bytes.NewReader(openapi))
	section, current := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line != "" && line[0] != ' ' && line[0] != '#':
			section, _, _ = strings.Cut(line, ":")
		case section == "info" && strings.HasPrefix(line, "  title:"):
			a.OpenAPITitle = strings.TrimSpace(strings.TrimPrefix(line, "  title:"))
		case section == "info" && strings.HasPrefix(line, "  version:"):
			a.OpenAPIVersion = strings.TrimSpace(strings.TrimPrefix(line, "  version:"))
		case section == "paths" && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			current = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case section == "paths" && current != "" && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     "):
			key, _, _ := strings.Cut(strings.TrimSpace(line), ":")
			switch key {
			case "get", "post", "put", "delete", "patch", "head":
				a.Paths = append(a.Paths, strings.ToUpper(key)+" "+current)
			}
		}
	}
	a.CapabilitySource = capSource
	var cs struct {
		FHIRVersion string `json:"fhirVersion"`
		Software    struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"software"`
		Rest []struct {
			Security struct {
				Service []struct {
					Coding []struct {
						Code string `json:"code"`
					} `json:"coding"`
				} `json:"service"`
			} `json:"security"`
			Resource []struct {
				Type      string `json:"type"`
				Operation []struct {
					Name string `json:"name"`
				} `json:"operation"`
			} `json:"resource"`
			Operation []struct {
				Name string `json:"name"`
			} `json:"operation"`
		} `json:"rest"`
	}
	if len(capability) == 0 || json.Unmarshal(capability, &cs) != nil {
		return a
	}
	a.FHIRVersion = cs.FHIRVersion
	a.Software = strings.TrimSpace(cs.Software.Name + " " + cs.Software.Version)
	for _, r := range cs.Rest {
		for _, s := range r.Security.Service {
			for _, c := range s.Coding {
				a.Security = strings.TrimSpace(a.Security + " " + c.Code)
			}
		}
		for _, res := range r.Resource {
			a.Resources = append(a.Resources, res.Type)
			for _, op := range res.Operation {
				a.Operations = append(a.Operations, fmt.Sprintf("%s/$%s", res.Type, op.Name))
			}
		}
		for _, op := range r.Operation {
			a.Operations = append(a.Operations, "$"+op.Name)
		}
	}
	slices.Sort(a.Resources)
	a.Resources = slices.Compact(a.Resources)
	slices.Sort(a.Operations)
	a.Operations = slices.Compact(a.Operations)
	return a
}
