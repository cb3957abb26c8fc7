package bulk

import (
	"encoding/json"
	"net/http"

	"github.com/dtm-project/dtm/fhir"
)

// Canonical URLs of the Bulk Data IG.
const (
	bulkCapability      = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
	opExportSystem      = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
	opExportPatient     = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
	opExportGroup       = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"
	restfulSecuritySys  = "http://terminology.hl7.org/CodeSystem/restful-security-service"
	capabilitySoftware  = "dtm"
	capabilityFHIRVersn = "4.0.1"
)

// handleMetadata returns the server's CapabilityStatement.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Write(s.capabilityStatement())
}

// capabilityStatement renders the R4 CapabilityStatement: it instantiates
// the Bulk Data IG's, offers $export at system, Patient and Group level and
// Binary read, and names SMART-on-FHIR when access tokens are required.
func (s *Server) capabilityStatement() []byte {
	op := func(def string) []map[string]any {
		return []map[string]any{{"name": "export", "definition": def}}
	}
	rest := map[string]any{
		"mode": "server",
		"resource": []map[string]any{
			{"type": "Binary", "interaction": []map[string]any{{"code": "read"}}},
			{"type": "Group", "operation": op(opExportGroup)},
			{"type": "Patient", "operation": op(opExportPatient)},
		},
		"operation": op(opExportSystem),
	}
	if s.cfg.RequiresAccessToken {
		rest["security"] = map[string]any{
			"service": []map[string]any{{"coding": []map[string]any{{
				"system": restfulSecuritySys, "code": "SMART-on-FHIR"}}}},
			"description": "SMART Backend Services: OAuth 2.0 client credentials with a signed JWT assertion; see /.well-known/smart-configuration",
		}
	}
	cs := map[string]any{
		"resourceType":   "CapabilityStatement",
		"status":         "active",
		"date":           fhir.FormatInstant(s.started),
		"kind":           "instance",
		"instantiates":   []string{bulkCapability},
		"software":       map[string]any{"name": capabilitySoftware},
		"implementation": map[string]any{"description": "dtm source: FHIR Bulk Data export", "url": s.cfg.BaseURL + "/fhir"},
		"fhirVersion":    capabilityFHIRVersn,
		"format":         []string{"application/fhir+json"},
		"rest":           []any{rest},
	}
	b, _ := json.MarshalIndent(cs, "", "  ")
	return b
}
