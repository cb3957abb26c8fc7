package storetest

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/fhir"
)

func testApply(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) {
		e := newEnv(t, open)
		now := e.clock.Advance(1234567 * time.Nanosecond) // sub-microsecond part is dropped
		p := PatientWrite("p1", "Smith")
		o := ObservationWrite("o1", "p1", "5.60")
		c := e.apply(PracticeA, p, o)
		want := now.Truncate(time.Microsecond)
		if c.Seq != 2 || !c.Time.Equal(want) || c.Applied != 2 || c.Skipped != 0 {
			t.Fatalf("Commit = %+v, want seq 2 at %v, 2 applied", c, want)
		}
		if h := e.head(); h.Seq != c.Seq || !h.Time.Equal(c.Time) {
			t.Fatalf("Head = %+v, want %+v", h, c.Snapshot)
		}
		got, err := e.s.Get(e.ctx, PracticeA, "Patient", "p1")
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, err := fhir.StampMeta(p.JSON, 1, want)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := fhir.ContentHash(p.JSON)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != 1 || got.Practice != PracticeA || got.Type != "Patient" || got.ID != "p1" ||
			got.Op != dtm.OpUpsert || got.Version != 1 || !got.CommitTime.Equal(want) ||
			got.Patient != "p1" || !got.Member || got.Hash != hash || !bytes.Equal(got.JSON, wantJSON) {
			t.Fatalf("Get = %+v (json %s), want seq 1 v1 at %v, hash %s, json %s", got, got.JSON, want, hash, wantJSON)
		}
		if !bytes.Contains(got.JSON, []byte(`"lastUpdated":"`+fhir.FormatInstant(want)+`"`)) {
			t.Fatalf("JSON %s lacks meta.lastUpdated %s", got.JSON, fhir.FormatInstant(want))
		}
		pr, err := e.s.Practice(e.ctx, PracticeA)
		if err != nil {
			t.Fatal(err)
		}
		if !pr.LastUpdated.Equal(want) {
			t.Fatalf("LastUpdated = %v, want %v", pr.LastUpdated, want)
		}
		if pr, _ := e.s.Practice(e.ctx, PracticeB); !pr.LastUpdated.IsZero() {
			t.Fatalf("other practice LastUpdated = %v, want zero", pr.LastUpdated)
		}
	})

	t.Run("ErrFrozen", func(t *testing.T) {
		e := newEnv(t, open)
		if err := e.s.SetFrozen(e.ctx, PracticeA, true); err != nil {
			t.Fatal(err)
		}
		_, err := e.s.Apply(e.ctx, PracticeA, []dtm.Write{PatientWrite("p1", "Smith")})
		wantCode(t, err, dtm.EFrozen)
		if h := e.head(); h.Seq != 0 {
			t.Fatalf("Head after frozen Apply = %+v, want zero", h)
		}
		e.apply(PracticeB, PatientWrite("p1", "Smith")) // other practices are not frozen
		if err := e.s.SetFrozen(e.ctx, PracticeA, false); err != nil {
			t.Fatal(err)
		}
		if c := e.apply(PracticeA, PatientWrite("p1", "Smith")); c.Applied != 1 {
			t.Fatalf("Apply after unfreeze = %+v", c)
		}
	})

	t.Run("ErrUnknownPractice", func(t *testing.T) {
		e := newEnv(t, open)
		_, err := e.s.Apply(e.ctx, "Z99999", []dtm.Write{PatientWrite("p1", "Smith")})
		wantCode(t, err, dtm.ENotFound)
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		e := newEnv(t, open)
		good := PatientWrite("p1", "Smith")
		for name, w := range map[string]dtm.Write{
			"EmptyType":    {ID: "x", Op: dtm.OpUpsert, JSON: []byte(`{}`)},
			"EmptyID":      {Type: "Patient", Op: dtm.OpUpsert, JSON: []byte(`{}`)},
			"NoJSON":       {Type: "Patient", ID: "x", Op: dtm.OpUpsert},
			"BadJSON":      {Type: "Patient", ID: "x", Op: dtm.OpUpsert, JSON: []byte(`{"resourceType":`)},
			"NotAnObject":  {Type: "Patient", ID: "x", Op: dtm.OpUpsert, JSON: []byte(`[1]`)},
			"UnknownOp":    {Type: "Patient", ID: "x", Op: dtm.Op(7)},
			"NegativeVers": {Type: "Patient", ID: "x", Op: dtm.OpDelete, Version: -1},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := e.s.Apply(e.ctx, PracticeA, []dtm.Write{good, w})
				wantCode(t, err, dtm.EInvalid)
				if h := e.head(); h.Seq != 0 {
					t.Fatalf("a rejected batch committed: Head = %+v", h)
				}
			})
		}
	})

	t.Run("Skips", func(t *testing.T) {
		e := newEnv(t, open)
		e.apply(PracticeA, PatientWrite("p1", "Smith"), ObservationWrite("o1", "p1", "5.60"))
		head := e.head()
		// Same content: other whitespace, key order and meta.
		same := Upsert("Patient", "p1", "p1", []byte(` {"id":"p1", "resourceType":"Patient","meta":{"versionId":"9","lastUpdated":"2000-01-01T00:00:00Z"},
			"name":[{"given":["Alex"],"family":"Smith"}],"identifier":[{"value":"9000000009","system":"https://fhir.nhs.uk/Id/nhs-number"}],"gender":"unknown","birthDate":"1970-01-01"}`))
		c := e.apply(PracticeA, same, Delete("Patient", "absent"), Delete("Observation", "o2"))
		if c.Applied != 0 || c.Skipped != 3 || c.Snapshot != head {
			t.Fatalf("Commit = %+v, want 3 skipped and the unchanged head %+v", c, head)
		}
		// A different decimal precision is a change.
		if c := e.apply(PracticeA, ObservationWrite("o1", "p1", "5.6")); c.Applied != 1 {
			t.Fatalf("5.60 -> 5.6: Commit = %+v, want applied", c)
		}
		if c := e.apply(PracticeA, Delete("Observation", "o1")); c.Applied != 1 {
			t.Fatalf("delete: Commit = %+v, want applied", c)
		}
		if c := e.apply(PracticeA, Delete("Observation", "o1")); c.Applied != 0 || c.Skipped != 1 {
			t.Fatalf("second delete: Commit = %+v, want skipped", c)
		}
		// Re-creating with the content it had before the delete is a change.
		if c := e.apply(PracticeA, ObservationWrite("o1", "p1", "5.6")); c.Applied != 1 {
			t.Fatalf("re-create: Commit = %+v, want applied", c)
		}
		// Deletes of the same id in another practice are absent there.
		if c := e.apply(PracticeB, Delete("Patient", "p1")); c.Skipped != 1 {
			t.Fatalf("delete in other practice: Commit = %+v, want skipped", c)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		e := newEnv(t, open)
		e.apply(PracticeA, ObservationWrite("o1", "p1", "1"))
		e.apply(PracticeA, ObservationWrite("o1", "p1", "2"))
		e.apply(PracticeA, Delete("Observation", "o1"))
		e.apply(PracticeA, ObservationWrite("o1", "p1", "4"))
		got := e.changes(dtm.ChangeQuery{Practice: PracticeA, Until: 3})
		if len(got) != 1 || got[0].Op != dtm.OpDelete || got[0].Version != 3 || got[0].JSON != nil || got[0].Hash != "" ||
			got[0].Patient != "p1" {
			t.Fatalf("tombstone = %+v, want v3 delete without JSON or hash, in p1's compartment", got)
		}
		c, err := e.s.Get(e.ctx, PracticeA, "Observation", "o1")
		if err != nil {
			t.Fatal(err)
		}
		if c.Version != 4 || !bytes.Contains(c.JSON, []byte(`"versionId":"4"`)) {
			t.Fatalf("Get = v%d %s, want v4 with meta.versionId 4", c.Version, c.JSON)
		}
	})

	t.Run("KnownVersion", func(t *testing.T) {
		e := newEnv(t, open)
		src := []byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"5","lastUpdated":"2026-01-02T03:04:05.123456Z"},"status":"final","valueQuantity":{"value":5.60}}`)
		w := Upsert("Observation", "o1", "p1", src)
		w.Version = 5
		if c := e.apply(PracticeA, w); c.Applied != 1 {
			t.Fatalf("Commit = %+v", c)
		}
		got, err := e.s.Get(e.ctx, PracticeA, "Observation", "o1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 5 || !bytes.Equal(got.JSON, src) {
			t.Fatalf("Get = v%d %s, want v5 stored exactly as given", got.Version, got.JSON)
		}
		for _, v := range []int64{5, 3} {
			w.Version = v
			if c := e.apply(PracticeA, w); c.Applied != 0 || c.Skipped != 1 {
				t.Fatalf("re-apply v%d over v5: Commit = %+v, want skipped", v, c)
			}
		}
		newer := bytes.Replace(src, []byte(`"versionId":"5"`), []byte(`"versionId":"6"`), 1)
		w.Version, w.JSON = 6, newer
		if c := e.apply(PracticeA, w); c.Applied != 1 {
			t.Fatalf("v6 (same content, newer version): Commit = %+v, want applied", c)
		}
		del := Delete("Observation", "o1")
		del.Version = 7
		if c := e.apply(PracticeA, del); c.Applied != 1 {
			t.Fatalf("delete v7: Commit = %+v, want applied", c)
		}
		if c := e.apply(PracticeA, del, w); c.Applied != 0 || c.Skipped != 2 {
			t.Fatalf("replay delete v7 and v6: Commit = %+v, want both skipped", c)
		}
		st, err := e.s.State(e.ctx, PracticeA, "Observation", "o1", e.head().Seq)
		if err != nil || st.Op != dtm.OpDelete || st.Version != 7 {
			t.Fatalf("State = %+v, %v; want delete v7", st, err)
		}
	})

	t.Run("DuplicateInBatch", func(t *testing.T) {
		// Decision: writes to one resource in one batch apply in order, each
		// with its own seq and version; skip rules see the earlier write.
		e := newEnv(t, open)
		c := e.apply(PracticeA,
			ObservationWrite("o1", "p1", "1"),
			ObservationWrite("o1", "p1", "2"),
			ObservationWrite("o1", "p1", "2"), // same as the previous write: skipped
			ObservationWrite("o2", "p1", "1"),
			Delete("Observation", "o2"),
		)
		if c.Applied != 4 || c.Skipped != 1 || c.Seq != 4 {
			t.Fatalf("Commit = %+v, want 4 applied, 1 skipped, seq 4", c)
		}
		for _, want := range []struct {
			id      string
			seq     int64
			version int64
			op      dtm.Op
		}{{"o1", 1, 1, dtm.OpUpsert}, {"o1", 2, 2, dtm.OpUpsert}, {"o2", 3, 1, dtm.OpUpsert}, {"o2", 4, 2, dtm.OpDelete}} {
			st, err := e.s.State(e.ctx, PracticeA, "Observation", want.id, want.seq)
			if err != nil || st.Seq != want.seq || st.Version != want.version || st.Op != want.op {
				t.Fatalf("State(%s, %d) = %s, %v; want %+v", want.id, want.seq, label(st), err, want)
			}
		}
		got := brief(e.changes(dtm.ChangeQuery{Practice: PracticeA, Until: c.Seq}))
		if want := []string{"Observation/o1 v2 upsert", "Observation/o2 v2 delete"}; !slices.Equal(got, want) {
			t.Fatalf("Changes = %q, want %q", got, want)
		}
	})

	t.Run("Fidelity", func(t *testing.T) {
		e := newEnv(t, open)
		src := []byte("{\"resourceType\":\"Observation\",\n  \"id\":\"fid\",\"meta\":{\"versionId\":\"99\",\"profile\":[\"https://fhir.hl7.org.uk/StructureDefinition/UKCore-Observation\"],\"lastUpdated\":\"2001-01-01T00:00:00Z\",\"tag\":[{\"code\":\"x\"}]}," +
			"\"status\":\"final\",\"code\":{\"text\":\"H\u00e6moglobin \u2013 \u2603 \U0001F600 \\u00e9 \\\"q\\\" \\/\"},\"_status\":{\"extension\":[{\"url\":\"http://example.org/x\",\"valueString\":\"\u00e9\"}]}," +
			"\"valueQuantity\":{\"value\":5.60,\"unit\":\"mmol/L\"},\"component\":[{\"valueQuantity\":{\"value\":1.0E+2}},{\"valueDecimal\":-0.000}],\"unknownElement\":{\"deep\":[1.50,true,null,\"\"]}}")
		c := e.apply(PracticeA, Upsert("Observation", "fid", "", src))
		got, err := e.s.Get(e.ctx, PracticeA, "Observation", "fid")
		if err != nil {
			t.Fatal(err)
		}
		want, err := fhir.StampMeta(src, 1, c.Time)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.JSON, want) {
			t.Fatalf("stored JSON\n%s\nwant (input with meta stamped)\n%s", got.JSON, want)
		}
		for _, lit := range []string{"5.60", "1.0E+2", "-0.000", "1.50", "\U0001F600", `\u00e9`, `\/`, "unknownElement", "UKCore-Observation"} {
			if !bytes.Contains(got.JSON, []byte(lit)) {
				t.Errorf("stored JSON lost %q", lit)
			}
		}
		if h, _ := fhir.ContentHash(src); got.Hash != h {
			t.Fatalf("Hash = %s, want ContentHash(input) %s", got.Hash, h)
		}
	})

	t.Run("CommitTimes", func(t *testing.T) {
		e := newEnv(t, open)
		var times []time.Time
		for i := range 3 { // the clock stands still
			times = append(times, e.apply(PracticeA, ObservationWrite("o"+strconv.Itoa(i), "p1", "1")).Time)
		}
		e.clock.Set(Epoch.Add(-time.Hour)) // and goes back
		times = append(times, e.apply(PracticeA, ObservationWrite("o9", "p1", "1")).Time)
		for i, want := range []time.Time{Epoch, Epoch.Add(time.Microsecond), Epoch.Add(2 * time.Microsecond), Epoch.Add(3 * time.Microsecond)} {
			if !times[i].Equal(want) {
				t.Fatalf("commit times = %v, want strictly increasing by 1µs from %v", times, Epoch)
			}
		}
		for _, ch := range e.changes(dtm.ChangeQuery{Practice: PracticeA, Until: 4}) {
			if !ch.CommitTime.Equal(times[ch.Seq-1]) {
				t.Fatalf("%s CommitTime = %v, want %v", label(ch), ch.CommitTime, times[ch.Seq-1])
			}
		}
	})
}
