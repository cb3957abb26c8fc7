package cutover

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dtm-project/dtm"
)

//go:embed evidence.html.tmpl
var evidenceTmpl string

var evidenceTemplate = template.Must(template.New("evidence").Funcs(template.FuncMap{
	"local":      Local,
	"duration":   dur,
	"took":       func(a, b time.Time) string { return dur(max(b.Sub(a), 0)) },
	"elapsed":    func(r dtm.CutoverRun) string { return dur(Elapsed(r)) },
	"timeline":   Timeline,
	"window":     func(p dtm.Plan) string { return hours(p.Window()) },
	"join":       func(xs []string) string { return strings.Join(xs, ", ") },
	"noEvidence": func() string { return NoEvidence },
	"seal":       sealState,
	"class":      func(s string) string { return strings.ReplaceAll(s, " ", "") },
	"kind": func(k string) string {
		switch k {
		case dtm.ConfirmReadiness:
			return "Readiness confirmation (T6), target supplier"
		case dtm.ConfirmSourceStatement:
			return "Statement of the source supplier (A4)"
		}
		return "Statement of the target supplier (A4)"
	},
	"figure": func(v string) template.HTML {
		if v == NoEvidence {
			return template.HTML(`<span class="no-evidence">` + NoEvidence + `</span>`)
		}
		return template.HTML(template.HTMLEscapeString(v))
	},
	"statusCounts": func(rs []Requirement) map[string]int {
		m := map[string]int{}
		for _, r := range rs {
			m[r.Status]++
		}
		return m
	},
}).Parse(evidenceTmpl))

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// inline SVG charts, no scripts and no external resources.
func (ev Evidence) WriteHTML(w io.Writer) error {
	if err := evidenceTemplate.Execute(w, ev); err != nil {
		return fmt.Errorf("evidence report: %w", err)
	}
	return nil
}

// Report files written by WriteEvidence.
const (
	EvidenceHTML = "index.html"
	EvidenceJSON = "evidence.json"
	EvidencePDF  = "evidence.pdf"
)

// WriteEvidence writes the report into dir (created if needed): index.html
// and evidence.json (the requirements, readiness, runs and reconciliation
// as data) and, when chromium is given, evidence.pdf. It returns the paths
// written.
func WriteEvidence(ctx context.Context, dir string, ev Evidence, chromium string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("evidence report: %w", err)
	}
	htmlPath := filepath.Join(dir, EvidenceHTML)
	f, err := os.Create(htmlPath)
	if err != nil {
		return nil, fmt.Errorf("evidence report: %w", err)
	}
	err = ev.WriteHTML(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(struct {
		Practice     string
		GeneratedAt  time.Time
		Plan         *dtm.Plan
		Requirements []Requirement
		Readiness    *Report
		Reconciles   []dtm.ReconcileSummary
		Runs         []dtm.CutoverRun
	}{ev.Practice, ev.GeneratedAt, ev.Plan, ev.Requirements, ev.Readiness, ev.Reconciles, ev.Runs}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence report: %w", err)
	}
	jsonPath := filepath.Join(dir, EvidenceJSON)
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("evidence report: %w", err)
	}
	paths := []string{htmlPath, jsonPath}
	if chromium != "" {
		pdf := filepath.Join(dir, EvidencePDF)
		if err := Chromium(ctx, chromium, htmlPath, "--print-to-pdf="+pdf, "--no-pdf-header-footer"); err != nil {
			return paths, err
		}
		paths = append(paths, pdf)
	}
	return paths, nil
}

// FindChromium returns the path of a Chromium (or Chrome) binary on PATH,
// or "" when there is none.
func FindChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Chromium runs headless chromium on the local HTML file page with extra
// arguments (--print-to-pdf=F or --screenshot=F), for at most two minutes.
func Chromium(ctx context.Context, chromium, page string, extra ...string) error {
	abs, err := filepath.Abs(page)
	if err != nil {
		return fmt.Errorf("chromium: %w", err)
	}
	profile, err := os.MkdirTemp("", "dtm-chromium-")
	if err != nil {
		return fmt.Errorf("chromium: %w", err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir=" + profile}, extra...)
	cmd := exec.CommandContext(ctx, chromium, append(args, "file://"+abs)...)
	cmd.Env = append(os.Environ(), "HOME="+profile) // a writable home for chromium's own files
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("chromium: timed out")
		}
		return fmt.Errorf("chromium: %w: %s", err, lastLine(out))
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
