package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
)

func TestDemo_Exit(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo end to end takes a while; skipped with -short")
	}
	var out, errs bytes.Buffer
	args := []string{"demo", "--exit", "--patients", "100", "--weeks", "4", "--dir", t.TempDir(), "--log-level", "error"}
	if code := Run(context.Background(), args, nil, &out, &errs); code != exitOK {
		t.Fatalf("dtm demo exited %d:\n%s\n%s", code, out.String(), errs.String())
	}
	m := regexp.MustCompile(`source holds (\d+) resources, target holds (\d+) \((\d+) quarantined\); reconciliation match true; (\d+) data issue`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no matching summary in the demo's output:\n%s", out.String())
	}
	src, _ := strconv.Atoi(m[1])
	tgt, _ := strconv.Atoi(m[2])
	quarantined, _ := strconv.Atoi(m[3])
	if src == 0 || src != tgt+quarantined {
		t.Errorf("source holds %d resources, target %d with %d quarantined: want them to add up", src, tgt, quarantined)
	}
	if issues, _ := strconv.Atoi(m[4]); issues == 0 {
		t.Errorf("no data issue was raised about the bad NHS number")
	}
	for _, want := range []string{"Initial extract", "scheduled pull", "Rehearsal", "Readiness confirmed",
		"resolved data issue", "closed", "Cutover live"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
}
