package target_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/target"
	"github.com/dtm-project/dtm/ukcore"
)

// countingValidator validates with ukcore, counting the resources it is
// asked about, and rejects every Condition.
type countingValidator struct {
	v *ukcore.Validator
	n atomic.Int64
}

func (c *countingValidator) Validate(b []byte) ukcore.Result {
	c.n.Add(1)
	if bytes.Contains(b, []byte(`"resourceType":"Condition"`)) {
		return ukcore.Result{Findings: []ukcore.Finding{{
			Severity: ukcore.SeverityError, Code: "business-rule", Rule: ukcore.RuleStructure, Message: "test rejects Conditions",
		}}}
	}
	return c.v.Validate(b)
}

// TestPuller_RePullSkipsValidationOfHeldResources pulls a practice, then
// pulls it again from scratch (a fresh pull state over the same target
// store, as after an export started again): only what the store does not
// hold unchanged is validated the second time.
func TestPuller_RePullSkipsValidationOfHeldResources(t *testing.T) {
	src := mustSource(t, 4)
	store := mustOpen(t, filepath.Join(t.TempDir(), "target.db"))
	uk, err := ukcore.NewValidator(ukcore.Options{PracticeODS: testODS})
	if err != nil {
		t.Fatal(err)
	}
	pull := func(state dtm.TargetState) (target.PullResult, int64) {
		t.Helper()
		c, err := target.NewClient(src.url, target.ClientOptions{
			Logger: quietLogger(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			MaxRetryAfter: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		v := &countingValidator{v: uk}
		p, err := target.NewPuller(target.Config{Store: store, State: state, Client: c, Validator: v,
			WorkDir: t.TempDir(), Logger: quietLogger(), BatchSize: 50})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Pull(context.Background(), testODS)
		if err != nil {
			t.Fatal(err)
		}
		return res, v.n.Load()
	}

	first, validated := pull(store)
	n := int64(liveCount(t, src.db))
	if first.Counts.Received != n || validated != n || first.Counts.Skipped != 0 {
		t.Fatalf("first pull: received %d, validated %d, skipped %d; want %d, %d, 0",
			first.Counts.Received, validated, first.Counts.Skipped, n, n)
	}
	rejected := first.Counts.Quarantined
	if rejected == 0 || first.Counts.Applied != n-rejected {
		t.Fatalf("first pull: applied %d, quarantined %d of %d; want some Conditions quarantined, the rest applied",
			first.Counts.Applied, rejected, n)
	}

	// A newer version of one Patient in the target store: the re-pulled,
	// older version is not what the store holds, so it is validated (and
	// then skipped by the store, as older).
	pat := firstPatient(t, store)
	bumped := dtm.Write{Type: "Patient", ID: pat.ID, Op: dtm.OpUpsert, JSON: pat.JSON, Version: pat.Version + 1, Patient: pat.ID, Member: pat.Member}
	if _, err := store.Apply(context.Background(), testODS, []dtm.Write{bumped}); err != nil {
		t.Fatal(err)
	}

	second, validated := pull(mustOpen(t, filepath.Join(t.TempDir(), "state.db")))
	if second.Counts.Received != n {
		t.Fatalf("second pull received %d, want %d", second.Counts.Received, n)
	}
	if validated != rejected+1 {
		t.Errorf("second pull validated %d resources, want %d (the quarantined Conditions and the older Patient)", validated, rejected+1)
	}
	if second.Counts.Quarantined != rejected || second.Counts.Applied != 0 || second.Counts.Skipped != n-rejected {
		t.Errorf("second pull: applied %d, skipped %d, quarantined %d; want 0, %d, %d",
			second.Counts.Applied, second.Counts.Skipped, second.Counts.Quarantined, n-rejected, rejected)
	}
}

// firstPatient returns a Patient the store holds.
func firstPatient(tb testing.TB, s dtm.Store) dtm.Change {
	tb.Helper()
	head, err := s.Head(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var pat dtm.Change
	err = s.Changes(context.Background(), dtm.ChangeQuery{Practice: testODS, Until: head.Seq}, func(c dtm.Change) error {
		if c.Type == "Patient" && c.Op == dtm.OpUpsert && pat.ID == "" {
			pat = c
		}
		return nil
	})
	if err != nil || pat.ID == "" {
		tb.Fatalf("no Patient in the store: %v", err)
	}
	return pat
}
