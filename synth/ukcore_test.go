package synth

import (
	"context"
	"testing"
	"time"

	"github.com/dtm-project/dtm/ukcore"
)

// TestGenerate_UKCoreClean checks every generated resource against the
// UK Core rules the target applies, with the clock at the practice's base
// time: generated data must raise no error (no record dated after it, no
// bad NHS number or SNOMED code), or a demo would quarantine it.
func TestGenerate_UKCoreClean(t *testing.T) {
	patients := 200
	if testing.Short() {
		patients = 30
	}
	opts := Options{Practice: "A81001", Patients: patients, Seed: 3}
	v, err := ukcore.NewValidator(ukcore.Options{Now: func() time.Time { return opts.base() }, PracticeODS: opts.Practice})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = Generate(context.Background(), opts, func(typ string, js []byte) error {
		n++
		for _, f := range v.Validate(js).Findings {
			if f.Severity == ukcore.SeverityError || f.Severity == ukcore.SeverityFatal {
				t.Errorf("%s: %s at %s: %s", typ, f.Rule, f.Expression, f.Message)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing generated")
	}
}

// TestSimulator_UKCoreClean checks simulated changes the same way, each
// with the clock at the moment it is committed: nothing a change records
// may be dated after it reaches the source.
func TestSimulator_UKCoreClean(t *testing.T) {
	opts := Options{Practice: "A81001", Patients: 300, Seed: 5}
	sim, err := NewSimulator(opts, 9, opts.base())
	if err != nil {
		t.Fatal(err)
	}
	var now time.Time
	v, err := ukcore.NewValidator(ukcore.Options{Now: func() time.Time { return now }, PracticeODS: opts.Practice})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = sim.Step(context.Background(), opts.base().AddDate(0, 0, 7), func(ev Event) error {
		if ev.Op != OpUpsert {
			return nil
		}
		n++
		now = ev.Time
		for _, f := range v.Validate(ev.JSON).Findings {
			if f.Severity == ukcore.SeverityError || f.Severity == ukcore.SeverityFatal {
				t.Errorf("%s at %v: %s at %s: %s", ev.Type, ev.Time, f.Rule, f.Expression, f.Message)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("a simulated week changed nothing")
	}
}
