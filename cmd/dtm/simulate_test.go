package main

import (
	"path/filepath"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/sqlite"
	"github.com/dtm-project/dtm/ukcore"
)

// TestSourceSimulate_NoFutureDates: run as fast as possible, the simulated
// days end now, so the activity it writes is never dated in the future
// (which the target's validation would quarantine).
func TestSourceSimulate_NoFutureDates(t *testing.T) {
	dir := t.TempDir()
	gen, path := filepath.Join(dir, "gen"), filepath.Join(dir, "s.db")
	run := func(args ...string) {
		t.Helper()
		if code, out := dtmRun(t, args...); code != exitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	head := func() int64 {
		t.Helper()
		st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		h, err := st.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return h.Seq
	}
	run("generate", "--practice", "A81001", "--patients", "30", "--seed", "3", "--out", gen)
	run("source", "load", "--db", "sqlite:"+path, "--practice", "A81001", gen)
	loaded := head()
	run("source", "simulate", "--db", "sqlite:"+path, "--practice", "A81001", "--patients", "30", "--seed", "3", "--days", "10")

	st, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := ukcore.NewValidator(ukcore.Options{PracticeODS: "A81001"})
	if err != nil {
		t.Fatal(err)
	}
	var simulated, future int
	q := dtm.ChangeQuery{Practice: "A81001", Since: loaded, Until: head()}
	err = st.Changes(t.Context(), q, func(c dtm.Change) error {
		if c.Op != dtm.OpUpsert {
			return nil
		}
		simulated++
		for _, f := range v.Validate(c.JSON).Findings {
			if f.Rule == ukcore.RuleDateInFuture {
				future++
				t.Logf("%s/%s: %s", c.Type, c.ID, f.Message)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if simulated == 0 {
		t.Fatal("the simulation changed nothing")
	}
	if future > 0 {
		t.Errorf("%d of %d simulated records dated in the future", future, simulated)
	}
}
