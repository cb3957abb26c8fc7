package bulk

import (
	"encoding/json"
	"strconv"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

// manifest is the body of a complete export's status response.
type manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []manifestFile `json:"output"`
	Deleted             []manifestFile `json:"deleted"`
	Error               []manifestFile `json:"error"`
}

// manifestFile is one file entry of a manifest.
type manifestFile struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count int64  `json:"count"`
}

// renderManifest renders the manifest of a complete job whose files are
// served under baseURL. transactionTime is written with microseconds so
// that it round-trips exactly as the next export's _since.
func renderManifest(job *dtm.ExportJob, baseURL string, requiresToken bool) []byte {
	m := manifest{
		TransactionTime:     fhir.FormatInstant(job.TransactionTime),
		Request:             job.Request,
		RequiresAccessToken: requiresToken,
		Output:              []manifestFile{},
		Deleted:             []manifestFile{},
		Error:               []manifestFile{},
	}
	for i, f := range job.Files {
		mf := manifestFile{Type: f.Type, URL: fileURL(baseURL, job.ID, i, f), Count: f.Count}
		switch f.Kind {
		case dtm.FileDeleted:
			m.Deleted = append(m.Deleted, mf)
		case dtm.FileError:
			m.Error = append(m.Error, mf)
		default:
			m.Output = append(m.Output, mf)
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return b
}

// fileName is the last path segment of file i (0-based) of a job:
// "{i+1}-{Type}.ndjson".
func fileName(i int, f dtm.ExportFile) string {
	return strconv.Itoa(i+1) + "-" + f.Type + ".ndjson"
}

// fileURL is the absolute URL of file i of job id.
func fileURL(baseURL, id string, i int, f dtm.ExportFile) string {
	return baseURL + "/fhir/_export/" + id + "/" + fileName(i, f)
}
