package target

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/dtm-project/dtm"
)

// nhsNumberSystem is the identifier system of NHS numbers.
const nhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number"

// patientRef names a Patient of a practice.
type patientRef struct{ practice, id string }

// nhsIndex maps NHS numbers to patients. It is built from the journal on
// first use and brought up to date on every lookup by reading only the
// Patient changes committed since, so it costs nothing when idle and
// little after a pull. It is safe for concurrent use.
type nhsIndex struct {
	store dtm.Store
	mu    sync.Mutex
	seq   int64                   // changes up to here are indexed
	by    map[string][]patientRef // NHS number -> patients
	of    map[patientRef][]string // patient -> its NHS numbers
}

func newNHSIndex(s dtm.Store) *nhsIndex {
	return &nhsIndex{store: s, by: map[string][]patientRef{}, of: map[patientRef][]string{}}
}

// lookup returns the live patients with NHS number nhs.
func (x *nhsIndex) lookup(ctx context.Context, nhs string) ([]patientRef, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.refresh(ctx); err != nil {
		return nil, fmt.Errorf("nhs number index: %w", err)
	}
	return append([]patientRef(nil), x.by[nhs]...), nil
}

// refresh indexes the Patient changes of every practice since x.seq.
func (x *nhsIndex) refresh(ctx context.Context) error {
	head, err := x.store.Head(ctx)
	if err != nil || head.Seq == x.seq {
		return err
	}
	ps, err := x.store.ListPractices(ctx)
	if err != nil {
		return err
	}
	for _, p := range ps {
		q := dtm.ChangeQuery{Practice: p.ODS, Type: "Patient", Since: x.seq, Until: head.Seq}
		if err := x.store.Changes(ctx, q, func(c dtm.Change) error {
			x.set(patientRef{c.Practice, c.ID}, nhsNumbers(c))
			return nil
		}); err != nil {
			return err
		}
	}
	x.seq = head.Seq
	return nil
}

// set replaces the NHS numbers of patient ref.
func (x *nhsIndex) set(ref patientRef, numbers []string) {
	for _, n := range x.of[ref] {
		refs := x.by[n]
		for i, r := range refs {
			if r == ref {
				refs = append(refs[:i], refs[i+1:]...)
				break
			}
		}
		if len(refs) == 0 {
			delete(x.by, n)
		} else {
			x.by[n] = refs
		}
	}
	delete(x.of, ref)
	for _, n := range numbers {
		x.by[n] = append(x.by[n], ref)
	}
	if len(numbers) > 0 {
		x.of[ref] = numbers
	}
}

// nhsNumbers returns the NHS numbers of a live Patient change (none for a
// delete).
func nhsNumbers(c dtm.Change) []string {
	if c.Op != dtm.OpUpsert {
		return nil
	}
	var p struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if json.Unmarshal(c.JSON, &p) != nil {
		return nil
	}
	var out []string
	for _, id := range p.Identifier {
		if id.System == nhsNumberSystem && id.Value != "" {
			out = append(out, id.Value)
		}
	}
	return out
}
