package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

// TargetOpener returns a new, empty target state that uses clock. It must
// arrange for it to be closed when t ends.
type TargetOpener func(t *testing.T, clock dtm.Clock) dtm.TargetState

// RunTarget runs the conformance suite of dtm.TargetState against the
// states open returns, one new state per subtest.
func RunTarget(t *testing.T, open TargetOpener) {
	t.Run("Checkpoint", func(t *testing.T) { testCheckpoint(t, open) })
	t.Run("Pulls", func(t *testing.T) { testPulls(t, open) })
	t.Run("Files", func(t *testing.T) { testFiles(t, open) })
	t.Run("Quarantine", func(t *testing.T) { testQuarantine(t, open) })
}

const targetSource = "http://source.test"

// testPull returns a pull record with every field set.
func testPull(id string, started time.Time) dtm.PullRecord {
	return dtm.PullRecord{
		ID: id, Source: targetSource, Practice: PracticeA, Status: dtm.PullKickedOff,
		Since: Epoch.Add(-time.Hour), StatusURL: targetSource + "/status/" + id,
		Manifest: []byte(`{"transactionTime":"x"}`), TransactionTime: Epoch.Add(time.Microsecond),
		SourceLastUpdated: Epoch.Add(-time.Minute), SourceWatermark: Epoch.Add(-2 * time.Minute),
		SourceFreshness: dtm.FreshOK, SourceLag: 90 * time.Second,
		StartedAt: started, AvailableAt: started.Add(time.Second),
		Counts: dtm.PullCounts{Received: 10, Applied: 7, Skipped: 2, Quarantined: 1, Warnings: 3},
	}
}

func testCheckpoint(t *testing.T, open TargetOpener) {
	ctx := t.Context()
	s := open(t, NewClock(Epoch))
	t.Run("None", func(t *testing.T) {
		cp, err := s.Checkpoint(ctx, targetSource, PracticeA)
		if err != nil || !cp.TransactionTime.IsZero() {
			t.Fatalf("checkpoint = %+v, %v", cp, err)
		}
	})
	p := testPull("p1", Epoch)
	if err := s.SavePull(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.FinishedAt = Epoch.Add(time.Minute)
	if err := s.CompletePull(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Run("Advanced", func(t *testing.T) {
		cp, err := s.Checkpoint(ctx, targetSource, PracticeA)
		if err != nil || !cp.TransactionTime.Equal(p.TransactionTime) || cp.Pull != "p1" {
			t.Fatalf("checkpoint = %+v, %v", cp, err)
		}
		got, err := s.Pull(ctx, "p1")
		if err != nil || got.Status != dtm.PullComplete {
			t.Fatalf("pull = %+v, %v", got, err)
		}
		if _, ok, err := s.ActivePull(ctx, targetSource, PracticeA); ok || err != nil {
			t.Fatalf("active pull after completion: %v %v", ok, err)
		}
	})
	t.Run("NeverBackwards", func(t *testing.T) {
		old := testPull("p0", Epoch.Add(time.Hour))
		old.TransactionTime = Epoch.Add(-time.Hour)
		if err := s.CompletePull(ctx, old); err != nil {
			t.Fatal(err)
		}
		cp, _ := s.Checkpoint(ctx, targetSource, PracticeA)
		if !cp.TransactionTime.Equal(p.TransactionTime) {
			t.Fatalf("checkpoint moved back to %v", cp.TransactionTime)
		}
	})
	t.Run("PerSourceAndPractice", func(t *testing.T) {
		for _, k := range [][2]string{{"http://other.test", PracticeA}, {targetSource, PracticeB}} {
			if cp, err := s.Checkpoint(ctx, k[0], k[1]); err != nil || !cp.TransactionTime.IsZero() {
				t.Fatalf("checkpoint %v = %+v, %v", k, cp, err)
			}
		}
	})
}

func testPulls(t *testing.T, open TargetOpener) {
	ctx := t.Context()
	s := open(t, NewClock(Epoch))
	t.Run("RoundTrip", func(t *testing.T) {
		p := testPull("rt", Epoch)
		if err := s.SavePull(ctx, p); err != nil {
			t.Fatal(err)
		}
		got, err := s.Pull(ctx, "rt")
		if err != nil {
			t.Fatal(err)
		}
		if got.Since != p.Since.UTC() || got.SourceLag != p.SourceLag || got.Counts != p.Counts ||
			string(got.Manifest) != string(p.Manifest) || got.StatusURL != p.StatusURL ||
			!got.AvailableAt.Equal(p.AvailableAt) || got.SourceFreshness != p.SourceFreshness {
			t.Fatalf("pull = %+v\nwant %+v", got, p)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if _, err := s.Pull(ctx, "none"); dtm.ErrorCode(err) != dtm.ENotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ActiveAndNewestFirst", func(t *testing.T) {
		a := testPull("a", Epoch.Add(time.Hour))
		a.Status = dtm.PullAbandoned
		b := testPull("b", Epoch.Add(2*time.Hour))
		b.Status = dtm.PullApplying
		for _, p := range []dtm.PullRecord{a, b} {
			if err := s.SavePull(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		act, ok, err := s.ActivePull(ctx, targetSource, PracticeA)
		if err != nil || !ok || act.ID != "b" {
			t.Fatalf("active = %v %v %v", act.ID, ok, err)
		}
		list, err := s.Pulls(ctx, PracticeA, 10)
		if err != nil || len(list) != 3 || list[0].ID != "b" || list[2].ID != "rt" {
			t.Fatalf("pulls = %d %v", len(list), err)
		}
	})
}

func testFiles(t *testing.T, open TargetOpener) {
	ctx := t.Context()
	s := open(t, NewClock(Epoch))
	urls := []string{"u3", "u1", "u2"}
	for _, u := range urls {
		if err := s.SaveFile(ctx, dtm.PullFile{Pull: "p", URL: u, Kind: dtm.FileOutput, Type: "Patient", Count: -1}); err != nil {
			t.Fatal(err)
		}
	}
	done := dtm.PullFile{Pull: "p", URL: "u1", Kind: dtm.FileOutput, Type: "Patient", Count: 5,
		Path: "/w/1", SHA256: "ab", Bytes: 100, Lines: 5, Verified: true, Applied: true,
		Counts: dtm.PullCounts{Received: 5, Applied: 5}}
	if err := s.SaveFile(ctx, done); err != nil {
		t.Fatal(err)
	}
	fs, err := s.Files(ctx, "p")
	if err != nil || len(fs) != 3 {
		t.Fatalf("files = %v, %v", fs, err)
	}
	for i, f := range fs {
		if f.URL != urls[i] {
			t.Fatalf("file %d is %s, want %s (order of first save)", i, f.URL, urls[i])
		}
	}
	if fs[1] != done {
		t.Fatalf("file = %+v\nwant %+v", fs[1], done)
	}
	if other, _ := s.Files(ctx, "q"); len(other) != 0 {
		t.Fatalf("files of another pull: %v", other)
	}
}

func testQuarantine(t *testing.T, open TargetOpener) {
	ctx := t.Context()
	s := open(t, NewClock(Epoch))
	recs := []dtm.QuarantineRecord{
		{Pull: "p", Practice: PracticeA, Reason: dtm.QuarantineInvalid, Type: "Patient", ID: "x", Version: 2,
			JSON: []byte(`{"resourceType":"Patient","id":"x"}`), Outcome: []byte(`{"resourceType":"OperationOutcome"}`), At: Epoch},
		{Pull: "p", Practice: PracticeA, Reason: dtm.QuarantineUnreadable, Where: "file#3", JSON: []byte(`{`), At: Epoch},
		{Pull: "q", Practice: PracticeA, Reason: dtm.QuarantineInvalid, Type: "Patient", ID: "x", Version: 3, At: Epoch},
		{Pull: "q", Practice: PracticeB, Reason: dtm.QuarantineInvalid, Type: "Patient", ID: "y", At: Epoch},
	}
	for range 2 { // storing again never duplicates
		if err := s.Quarantine(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	collect := func(practice, pull string) []dtm.QuarantineRecord {
		var out []dtm.QuarantineRecord
		if err := s.Quarantined(ctx, practice, pull, func(q dtm.QuarantineRecord) error {
			out = append(out, q)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := collect(PracticeA, ""); len(got) != 3 || got[0].ID != "x" || got[1].Where != "file#3" || got[2].Version != 3 {
		t.Fatalf("practice A quarantine = %+v", got)
	}
	if got := collect(PracticeA, "p"); len(got) != 2 || string(got[0].Outcome) != string(recs[0].Outcome) ||
		string(got[0].JSON) != string(recs[0].JSON) || !got[0].At.Equal(Epoch) {
		t.Fatalf("pull p quarantine = %+v", got)
	}
	stop := errors.New("stop")
	if err := s.Quarantined(ctx, PracticeA, "", func(dtm.QuarantineRecord) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn error not returned: %v", err)
	}
}
