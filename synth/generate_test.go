package synth

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dtm-project/dtm/ukcore"
)

func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[e.Name()] = hex.EncodeToString(s[:])
	}
	return sums
}

func TestWriteNDJSON_Deterministic(t *testing.T) {
	for _, gz := range []bool{false, true} {
		opts := Options{Practice: "A81001", Patients: 30, Seed: 9, Base: DefaultBase}
		a, b := t.TempDir(), t.TempDir()
		opts.Workers = 1
		sa, err := WriteNDJSON(context.Background(), opts, a, gz)
		if err != nil {
			t.Fatal(err)
		}
		opts.Workers = 4
		sb, err := WriteNDJSON(context.Background(), opts, b, gz)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(hashDir(t, a), hashDir(t, b)); diff != "" {
			t.Errorf("gzip=%v: same seed, different bytes (-1 worker +4 workers):\n%s", gz, diff)
		}
		if diff := cmp.Diff(sa.Resources, sb.Resources); diff != "" {
			t.Errorf("gzip=%v: counts differ:\n%s", gz, diff)
		}
		if len(sa.Files) != len(sa.Resources) {
			t.Errorf("gzip=%v: %d files for %d types", gz, len(sa.Files), len(sa.Resources))
		}
	}
}

func TestGenerate_SeedMatters(t *testing.T) {
	first := func(seed uint64) string {
		var got string
		opts := Options{Practice: "A81001", Patients: 1, Seed: seed, Base: DefaultBase}
		errStop := errors.New("stop")
		err := Generate(context.Background(), opts, func(typ string, js []byte) error {
			if typ == "Patient" {
				got = string(js)
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Generate: %v", err)
		}
		return got
	}
	if first(1) == first(2) {
		t.Error("seeds 1 and 2 gave the same first patient")
	}
}

func TestGenerate_ResourceTypes(t *testing.T) {
	types := map[string]int{}
	for _, r := range MustPractice(t) {
		types[r.Type]++
	}
	want := []string{"Organization", "Practitioner", "PractitionerRole", "Location", "Patient", "Encounter",
		"Condition", "Observation", "AllergyIntolerance", "MedicationRequest", "MedicationStatement",
		"Immunization", "Procedure", "DiagnosticReport", "ServiceRequest", "DocumentReference", "Binary",
		"Flag", "Appointment", "Schedule", "Slot", "Task", "List", "AuditEvent", "Provenance"}
	for _, w := range want {
		if types[w] == 0 {
			t.Errorf("no %s generated", w)
		}
	}
	if len(types) < 20 {
		t.Errorf("%d resource types, want at least 20", len(types))
	}
}

func TestGenerate_References(t *testing.T) {
	res := MustPractice(t)
	exists := map[string]bool{}
	for _, r := range res {
		exists[r.Type+"/"+r.ID] = true
	}
	n := 0
	for _, r := range res {
		walk(r.Obj, func(m map[string]any) {
			ref, ok := m["reference"].(string)
			if !ok {
				return
			}
			n++
			if !exists[ref] {
				t.Errorf("%s/%s: reference %q does not resolve", r.Type, r.ID, ref)
			}
		})
		if url, ok := attachmentURL(r); ok && !exists[url] {
			t.Errorf("%s/%s: attachment url %q does not resolve", r.Type, r.ID, url)
		}
	}
	if n == 0 {
		t.Fatal("no references found")
	}
}

func attachmentURL(r resource) (string, bool) {
	if r.Type != "DocumentReference" {
		return "", false
	}
	c := r.Obj["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
	return c["url"].(string), true
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func TestGenerate_IDsAndMeta(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range MustPractice(t) {
		key := r.Type + "/" + r.ID
		if !idPattern.MatchString(r.ID) {
			t.Errorf("%s: invalid id", key)
		}
		if seen[key] {
			t.Errorf("%s: duplicate", key)
		}
		seen[key] = true
		meta, _ := r.Obj["meta"].(map[string]any)
		if meta["versionId"] != "1" {
			t.Errorf("%s: versionId %v", key, meta["versionId"])
		}
		lu, err := time.Parse(time.RFC3339, meta["lastUpdated"].(string))
		if err != nil || lu.After(testOpts.Base) {
			t.Errorf("%s: lastUpdated %v after base or invalid (%v)", key, meta["lastUpdated"], err)
		}
	}
}

func TestGenerate_NHSNumbers(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range MustPractice(t) {
		if r.Type != "Patient" {
			continue
		}
		id := r.Obj["identifier"].([]any)[0].(map[string]any)
		nhs := id["value"].(string)
		if id["system"] != nhsNumberSystem || !ukcore.ValidNHSNumber(nhs) || !strings.HasPrefix(nhs, "999") {
			t.Errorf("%s: bad NHS number %v %q", r.ID, id["system"], nhs)
		}
		if seen[nhs] {
			t.Errorf("%s: duplicate NHS number %s", r.ID, nhs)
		}
		seen[nhs] = true
		if !strings.Contains(string(r.JSON), nhsVerifyExt) {
			t.Errorf("%s: no NHS number verification status", r.ID)
		}
	}
	if len(seen) != testOpts.Patients {
		t.Errorf("%d patients, want %d", len(seen), testOpts.Patients)
	}
}

func TestNHSNumber_UniqueAcrossRange(t *testing.T) {
	seen := make(map[string]int, 20000)
	for i := range 20000 {
		n := nhsNumber(3, i)
		if !ukcore.ValidNHSNumber(n) || n[:3] != "999" {
			t.Fatalf("index %d: invalid %s", i, n)
		}
		if j, dup := seen[n]; dup {
			t.Fatalf("indexes %d and %d share %s", j, i, n)
		}
		seen[n] = i
	}
}

func TestCodes_ValidSCTID(t *testing.T) {
	check := func(kind, code, display string) {
		if !ukcore.ValidSCTID(code) || !ukcore.VerhoeffValid(code) {
			t.Errorf("%s %s %q: not a valid SCTID (Verhoeff or partition)", kind, code, display)
		}
	}
	for _, c := range allSNOMED() {
		check("snomed", c.Code, c.Display)
	}
	for _, d := range allDrugs {
		check("dm+d", d.Code, d.Display)
	}
	for _, v := range []concept{vaccines.Flu, vaccines.Pneumo, vaccines.Covid, vaccines.CovidMRNA} {
		check("dm+d vaccine", v.Code, v.Display)
	}
	// And every code actually written.
	for _, r := range MustPractice(t) {
		walk(r.Obj, func(m map[string]any) {
			sys, _ := m["system"].(string)
			if sys == snomedSystem || sys == dmdSystem {
				check(r.Type+" "+sys, m["code"].(string), "")
			}
		})
	}
}

func TestGenerate_Attachments(t *testing.T) {
	binaries := map[string]string{}
	for _, r := range MustPractice(t) {
		if r.Type == "Binary" {
			binaries["Binary/"+r.ID] = r.Obj["data"].(string)
		}
	}
	n := 0
	for _, r := range MustPractice(t) {
		if r.Type != "DocumentReference" {
			continue
		}
		n++
		att := r.Obj["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
		data, err := base64.StdEncoding.DecodeString(binaries[att["url"].(string)])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha1.Sum(data)
		got := map[string]string{"size": string(att["size"].(json.Number)), "hash": att["hash"].(string)}
		want := map[string]string{"size": itoa(len(data)), "hash": base64.StdEncoding.EncodeToString(sum[:])}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DocumentReference/%s attachment (-want +got):\n%s", r.ID, diff)
		}
	}
	if n == 0 {
		t.Fatal("no DocumentReference")
	}
}

func TestGenerate_DecimalPrecisionAndSecurity(t *testing.T) {
	chol := regexp.MustCompile(`"code":"` + obsCholesterol.Code + `".*"valueQuantity":\{"value":\d+\.\d\d,`)
	var precise, restricted, deceased, nonASCII int
	for _, r := range MustPractice(t) {
		s := string(r.JSON)
		if chol.MatchString(s) {
			precise++
		}
		if strings.Contains(s, `"security":[{"system":"`+confidentiality+`","code":"R"`) {
			restricted++
		}
		if r.Type == "Patient" {
			if _, ok := r.Obj["deceasedDateTime"]; ok {
				deceased++
			}
			if strings.ContainsFunc(s, func(c rune) bool { return c > 127 }) {
				nonASCII++
			}
			if r.Obj["active"] != true {
				t.Errorf("Patient/%s: not active", r.ID)
			}
		}
	}
	for what, n := range map[string]int{"2-dp cholesterol": precise, "restricted": restricted, "deceased": deceased, "non-ASCII names": nonASCII} {
		if n == 0 {
			t.Errorf("no %s resources", what)
		}
	}
}

func TestGeneratePatient_MatchesGenerate(t *testing.T) {
	var want []string
	in := false
	for _, r := range MustPractice(t) {
		if r.Type == "Patient" {
			in = r.ID == "pat-000007"
		}
		if in {
			want = append(want, string(r.JSON))
		}
	}
	var got []string
	err := GeneratePatient(testOpts, 6, func(_ string, js []byte) error {
		got = append(got, string(js))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GeneratePatient differs from Generate (-want +got):\n%s", diff)
	}
}

func TestGenerate_Errors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"ErrNoPractice", Options{Patients: 1}},
		{"ErrBadPractice", Options{Practice: "A8/1001", Patients: 1}},
		{"ErrNoPatients", Options{Practice: "A81001"}},
		{"ErrTooMany", Options{Practice: "A81001", Patients: maxPatients + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Generate(context.Background(), tt.opts, func(string, []byte) error { return nil })
			if err == nil {
				t.Error("want an error")
			}
		})
	}
	t.Run("ErrCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Generate(ctx, Options{Practice: "A81001", Patients: 50}, func(string, []byte) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("ErrEmit", func(t *testing.T) {
		boom := errors.New("boom")
		n := 0
		err := Generate(context.Background(), Options{Practice: "A81001", Patients: 50}, func(string, []byte) error {
			if n++; n == 500 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Errorf("got %v, want boom", err)
		}
	})
}

func TestAppendQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"line\nnext\ttab", `"line\nnext\ttab"`},
		{"\x01", `"\u0001"`},
		{"Siobhán Zoë Łukasz", `"Siobhán Zoë Łukasz"`},
		{"bad\xffutf8", "\"bad\ufffdutf8\""},
	}
	for _, tt := range tests {
		if got := string(appendQuoted(nil, tt.in)); got != tt.want {
			t.Errorf("appendQuoted(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
