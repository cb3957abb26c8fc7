package ukcore

import "encoding/json"

// ExtensionValidatedResource is the URL of the extension OperationOutcome
// puts on an outcome to name the resource it is about.
const ExtensionValidatedResource = "https://github.com/dtm-project/dtm/StructureDefinition/validated-resource"

type outcome struct {
	ResourceType string         `json:"resourceType"`
	Extension    []outcomeExt   `json:"extension,omitempty"`
	Issue        []outcomeIssue `json:"issue"`
}

type outcomeExt struct {
	URL            string           `json:"url"`
	ValueReference outcomeReference `json:"valueReference"`
}

type outcomeReference struct {
	Reference string `json:"reference"`
}

type outcomeIssue struct {
	Severity    Severity `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// OperationOutcome returns r as a FHIR R4 OperationOutcome in JSON, one
// issue per finding (severity, code, diagnostics "rule: message",
// expression). When resourceType and id are both set, an extension
// (ExtensionValidatedResource) references the resource "resourceType/id"
// the outcome is about. A Result without findings gives the single
// informational issue R4 requires ("all OK"). It holds no patient data.
func (r Result) OperationOutcome(resourceType, id string) []byte {
	oo := outcome{ResourceType: "OperationOutcome", Issue: make([]outcomeIssue, 0, len(r.Findings))}
	if resourceType != "" && id != "" {
		oo.Extension = []outcomeExt{{
			URL:            ExtensionValidatedResource,
			ValueReference: outcomeReference{Reference: resourceType + "/" + id},
		}}
	}
	for _, f := range r.Findings {
		issue := outcomeIssue{Severity: f.Severity, Code: f.Code, Diagnostics: f.Rule + ": " + f.Message}
		if f.Expression != "" {
			issue.Expression = []string{f.Expression}
		}
		oo.Issue = append(oo.Issue, issue)
	}
	if len(oo.Issue) == 0 {
		oo.Issue = append(oo.Issue, outcomeIssue{
			Severity: SeverityInformation, Code: "informational", Diagnostics: "all OK",
		})
	}
	b, err := json.Marshal(oo)
	if err != nil {
		// Unreachable: every field is a string; keep the contract anyway.
		return []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`)
	}
	return b
}
