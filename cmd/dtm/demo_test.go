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
	args := []string{"demo", "--exit", "--patients", "100", "--weeks", "2", "--dir", t.TempDir(), "--log-level", "error"}
	if code := Run(context.Background(), args, nil, &out, &errs); code != exitOK {
		t.Fatalf("dtm demo exited %d:\n%s\n%s", code, out.String(), errs.String())
	}
	m := regexp.MustCompile(`source holds (\d+) resources, target holds (\d+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary in the demo's output:\n%s", out.String())
	}
	src, _ := strconv.Atoi(m[1])
	tgt, _ := strconv.Atoi(m[2])
	if src == 0 || src != tgt {
		t.Errorf("source holds %d resources, target %d: want equal and non-zero", src, tgt)
	}
	for _, want := range []string{"Initial extract", "Week 1 of practice activity", "Week 2 of practice activity"} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
}
