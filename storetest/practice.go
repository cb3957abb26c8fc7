package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
)

func testPractices(t *testing.T, open Opener) {
	t.Run("Create", func(t *testing.T) {
		e := newEnv(t, open)
		now := e.clock.Advance(time.Hour + 1500*time.Nanosecond)
		p, err := e.s.CreatePractice(e.ctx, dtm.Practice{ODS: "C11111", Name: "Castle Surgery"})
		if err != nil {
			t.Fatal(err)
		}
		want := dtm.Practice{ODS: "C11111", Name: "Castle Surgery", CreatedAt: now.Truncate(time.Microsecond)}
		if p != want {
			t.Fatalf("CreatePractice = %+v, want %+v", p, want)
		}
		e.clock.Advance(time.Hour)
		again, err := e.s.CreatePractice(e.ctx, dtm.Practice{ODS: "C11111", Name: "Renamed"})
		if err != nil || again != want {
			t.Fatalf("CreatePractice again = %+v, %v; want the existing %+v", again, err, want)
		}
		got, err := e.s.Practice(e.ctx, "C11111")
		if err != nil || got != want {
			t.Fatalf("Practice = %+v, %v; want %+v", got, err, want)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		e := newEnv(t, open)
		for _, ods := range []string{"", "ab123", "A1", "A12345678901", "A1234 ", "A'1;--"} {
			_, err := e.s.CreatePractice(e.ctx, dtm.Practice{ODS: ods})
			wantCode(t, err, dtm.EInvalid)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		e := newEnv(t, open)
		_, err := e.s.Practice(e.ctx, "Z99999")
		wantCode(t, err, dtm.ENotFound)
		wantCode(t, e.s.SetWatermark(e.ctx, "Z99999", Epoch), dtm.ENotFound)
		wantCode(t, e.s.SetFrozen(e.ctx, "Z99999", true), dtm.ENotFound)
	})
	t.Run("List", func(t *testing.T) {
		e := newEnv(t, open)
		if _, err := e.s.CreatePractice(e.ctx, dtm.Practice{ODS: "AAA111", Name: "First"}); err != nil {
			t.Fatal(err)
		}
		ps, err := e.s.ListPractices(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.ODS)
		}
		if want := []string{"A12345", "AAA111", PracticeB}; !slices.Equal(got, want) {
			t.Fatalf("ListPractices = %q, want %q", got, want)
		}
	})
	t.Run("Watermark", func(t *testing.T) {
		e := newEnv(t, open)
		wm := func() time.Time {
			t.Helper()
			p, err := e.s.Practice(e.ctx, PracticeA)
			if err != nil {
				t.Fatal(err)
			}
			return p.Watermark
		}
		if !wm().IsZero() {
			t.Fatalf("new practice watermark = %v, want zero", wm())
		}
		t1 := Epoch.Add(-time.Hour)
		for _, tc := range []struct {
			set, want time.Time
		}{
			{t1, t1},
			{t1.Add(-time.Minute), t1}, // never backwards
			{Epoch.Add(1234 * time.Nanosecond), Epoch.Add(time.Microsecond)}, // microseconds
			{time.Time{}, Epoch.Add(time.Microsecond)},
		} {
			if err := e.s.SetWatermark(e.ctx, PracticeA, tc.set); err != nil {
				t.Fatal(err)
			}
			if got := wm(); !got.Equal(tc.want) {
				t.Fatalf("after SetWatermark(%v): watermark = %v, want %v", tc.set, got, tc.want)
			}
		}
		if p, _ := e.s.Practice(e.ctx, PracticeB); !p.Watermark.IsZero() {
			t.Fatalf("other practice watermark = %v, want zero", p.Watermark)
		}
	})
	t.Run("Frozen", func(t *testing.T) {
		e := newEnv(t, open)
		for _, frozen := range []bool{true, true, false} {
			if err := e.s.SetFrozen(e.ctx, PracticeA, frozen); err != nil {
				t.Fatal(err)
			}
			if p, err := e.s.Practice(e.ctx, PracticeA); err != nil || p.Frozen != frozen {
				t.Fatalf("Practice = %+v, %v; want Frozen %v", p, err, frozen)
			}
		}
	})
	t.Run("FreezeBarrier", func(t *testing.T) {
		// Once SetFrozen(true) has returned, no write to the practice
		// commits, not even one that was in flight: the cutover's final
		// export cannot miss a straggling batch.
		e := newEnv(t, open)
		done := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			for i := 0; ; i++ {
				_, err := e.s.Apply(e.ctx, PracticeA, []dtm.Write{ObservationWrite(fmt.Sprintf("o%d", i), "p1", "1")})
				if i == 3 {
					close(started)
				}
				if dtm.ErrorCode(err) == dtm.EFrozen {
					done <- nil
					return
				} else if err != nil {
					done <- err
					return
				}
			}
		}()
		<-started
		if err := e.s.SetFrozen(e.ctx, PracticeA, true); err != nil {
			t.Fatal(err)
		}
		frozenAt := e.head()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if h := e.head(); h != frozenAt {
			t.Fatalf("Head moved from %+v to %+v after SetFrozen returned", frozenAt, h)
		}
	})
}
