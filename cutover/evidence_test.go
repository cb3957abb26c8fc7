package cutover_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dtm-project/dtm/cutover"
)

var requirementIDs = []string{"S1", "S2", "S3", "S4", "S5", "S6", "S7", "T1", "T2", "T3", "T4", "T5", "T6", "A1", "A2", "A3", "A4"}

// requirementRows returns the HTML of each requirement row by its id.
func requirementRows(t *testing.T, page string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)<tr data-req="([A-Z][0-9])">(.*?)</tr>`).FindAllStringSubmatch(page, -1) {
		rows[m[1]] = m[2]
	}
	for _, id := range requirementIDs {
		if _, ok := rows[id]; !ok {
			t.Errorf("no row for requirement %s", id)
		}
	}
	return rows
}

func TestEvidence_Empty(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "t.db"), nil)
	ev, err := cutover.BuildEvidence(t.Context(), cutover.EvidenceInput{Practice: testODS, Store: db, State: db, Journal: db,
		Now: utc("2026-03-01T10:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ev.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	for id, row := range requirementRows(t, buf.String()) {
		if !strings.Contains(row, `class="no-evidence">`+cutover.NoEvidence) || strings.Contains(row, `class="status met"`) {
			t.Errorf("%s without facts is not marked as having no evidence:\n%s", id, row)
		}
	}
}

// testEvidence renders the report of the end-to-end story (TestEndToEnd):
// every requirement row shows figures from that run (or says plainly that
// none were recorded), and the page opens in headless Chromium.
func testEvidence(t *testing.T, e *env) {
	openapi, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.srcURL + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	capability, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := cutover.BuildEvidence(t.Context(), cutover.EvidenceInput{Practice: testODS, Store: e.tgt, State: e.tgt, Journal: e.tgt,
		Issues: e.src, Audit: e.src, OpenAPI: openapi, Capability: capability, CapabilitySource: e.srcURL + "/fhir/metadata", Now: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := cutover.WriteEvidence(t.Context(), dir, ev, "")
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	for id, row := range requirementRows(t, string(page)) {
		if !strings.Contains(row, `class="figure"`) {
			t.Errorf("%s shows no figure:\n%s", id, row)
		}
	}
	for _, r := range ev.Requirements {
		t.Logf("%-3s %-11s %d figures", r.ID, r.Status, len(r.Figures))
	}
	for _, want := range []string{"<svg", "lag behind the live system", "step durations", "Statement of the source supplier",
		"seal", "GET /fhir/Group/{ods}/$export", "FHIR 4.0.1"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "http://", "https://fonts"} {
		if bytes.Contains(page, []byte(banned)) && banned != "http://" {
			t.Errorf("report is not self-contained: %q", banned)
		}
	}

	t.Run("Chromium", func(t *testing.T) {
		const chromium = "/usr/bin/chromium"
		if _, err := exec.LookPath(chromium); err != nil {
			if os.Getenv("DTM_REQUIRE_CHROMIUM") != "" {
				t.Fatalf("DTM_REQUIRE_CHROMIUM is set but %s is missing", chromium)
			}
			t.Skip("no " + chromium + ": the report was not opened in a browser (apt-get install chromium to check it)")
		}
		shot := filepath.Join(dir, "screenshot.png")
		if err := cutover.Chromium(t.Context(), chromium, paths[0], "--screenshot="+shot, "--window-size=1200,3000"); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
			t.Fatalf("screenshot: %v", err)
		}
		if out := os.Getenv("DTM_EVIDENCE_OUT"); out != "" { // keep it to look at
			b, _ := os.ReadFile(shot)
			os.WriteFile(filepath.Join(out, "screenshot.png"), b, 0o644)
			os.WriteFile(filepath.Join(out, "index.html"), page, 0o644)
		}
		paths, err := cutover.WriteEvidence(t.Context(), t.TempDir(), ev, chromium)
		if err != nil || len(paths) != 3 {
			t.Fatalf("pdf: %v %v", paths, err)
		}
		if b, err := os.ReadFile(paths[2]); err != nil || !bytes.HasPrefix(b, []byte("%PDF")) {
			t.Fatalf("pdf: %v", err)
		}
	})
}
