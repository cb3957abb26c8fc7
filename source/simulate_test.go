package source

import (
	"context"
	"testing"
	"time"

	"github.com/dtm-project/dtm/synth"
)

func TestFeed_Run(t *testing.T) {
	ctx := context.Background()
	db := MustOpen(t)
	opts := synth.Options{Practice: "A81001", Patients: 50, Seed: 7}
	in := &Ingester{Journal: db}
	if _, err := in.LoadGenerated(ctx, "A81001", opts); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Head(ctx)
	start := synth.DefaultBase
	sim, err := synth.NewSimulator(opts, 1, start)
	if err != nil {
		t.Fatal(err)
	}
	f := &Feed{Store: db, Practice: "A81001", Sim: sim}
	paced := 0
	st, err := f.Run(ctx, start.Add(7*24*time.Hour), 6*time.Hour, func(context.Context, time.Time) error { paced++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Steps != 28 || paced != 28 {
		t.Errorf("steps %d paced %d, want 28 each (a week in 6-hour steps)", st.Steps, paced)
	}
	if st.Events == 0 || st.Applied == 0 {
		t.Fatalf("a simulated week produced %d events, %d applied", st.Events, st.Applied)
	}
	after, _ := db.Head(ctx)
	if after.Seq <= before.Seq {
		t.Errorf("journal did not advance: %d -> %d", before.Seq, after.Seq)
	}
	p, err := db.Practice(ctx, "A81001")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Watermark.Equal(start.Add(7 * 24 * time.Hour)) {
		t.Errorf("watermark %v, want the end of the simulated week", p.Watermark)
	}
}
