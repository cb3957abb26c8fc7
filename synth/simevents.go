package synth

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"
)

// happen simulates one happening of kind at t and appends its events.
func (s *Simulator) happen(r *rand.Rand, kind string, t time.Time, evs []Event) []Event {
	s.seq++
	switch kind {
	case KindRegistration:
		return s.register(t, evs)
	case KindAmendment, KindDeletion:
		return s.amendOrDelete(r, kind, t, evs)
	case KindCancellation:
		return s.cancel(r, t, evs)
	case KindDeduction, KindDeath:
		return s.leave(r, kind, t, evs)
	}
	i := s.randomPatient(r)
	if i < 0 {
		return evs
	}
	var b batch
	g := s.pgenFor(i, &b)
	g.r, g.ns, g.end = r, "x"+strconv.FormatInt(int64(s.seq), 36), t.Add(time.Minute)
	switch kind {
	case KindConsultation:
		s.consult(g, t)
	case KindPrescription:
		s.prescribe(g, t)
	case KindBooking:
		s.book(g, i, t)
	case KindDocument:
		g.letter(t, pick(r, docTypes), "", false)
	case KindTask:
		g.task(t, g.ref, pick(r, []string{"Call patient about results", "Arrange medication review", "Update contact details"}))
	}
	return appendBatch(evs, &b, t, kind)
}

// pgenFor returns a generator positioned on patient i's demographics.
func (s *Simulator) pgenFor(i int, b *batch) *pgen {
	sp := &s.patients[i]
	var g *pgen
	if sp.regAt.IsZero() {
		g = newPgen(s.p, i, b)
	} else {
		g = newRegistrant(s.p, i, sp.regAt, b)
	}
	g.death = sp.death
	return g
}

// appendBatch appends an upsert event for every resource in b.
func appendBatch(evs []Event, b *batch, t time.Time, kind string) []Event {
	for _, it := range b.items {
		js := bytes.Clone(b.buf[it.start:it.end])
		evs = append(evs, Event{Time: t, Op: OpUpsert, Type: it.typ, ID: resourceID(js), JSON: js, Kind: kind})
	}
	return evs
}

// resourceID returns the id of a resource written by enc (resourceType
// then id come first).
func resourceID(js []byte) string {
	const key = `"id":"`
	i := bytes.Index(js, []byte(key))
	if i < 0 {
		return ""
	}
	rest := js[i+len(key):]
	return string(rest[:bytes.IndexByte(rest, '"')])
}

// consult writes a consultation: a review of a long-term condition or an
// acute problem.
func (s *Simulator) consult(g *pgen, t time.Time) {
	var active []*condition
	for i := range g.conds {
		if g.conds[i].onset.Before(t) {
			active = append(active, &g.conds[i])
		}
	}
	// The consultation began half an hour before it is committed, so that
	// nothing it records (its Provenance and AuditEvent come 20 minutes
	// after its start) is dated after the change reaches the source.
	began := t.Add(-30 * time.Minute)
	if len(active) > 0 && chance(g.r, 0.4) {
		g.review(began, pick(g.r, active))
		return
	}
	g.acute(began, g.ageAt(began))
}

// prescribe issues a repeat prescription, or an acute one for patients
// without repeat medication.
func (s *Simulator) prescribe(g *pgen, t time.Time) {
	for _, c := range g.conds {
		if len(c.meds) > 0 {
			g.issue(&plan{drug: pick(g.r, c.meds)}, t, c.def.Sensitive)
			return
		}
	}
	g.issue(&plan{drug: pick(g.r, []drug{drugParacetamol, drugAmox500, drugCocodamol, drugSalbutamol})}, t, false)
}

// book books a future appointment and remembers it for cancellations.
func (s *Simulator) book(g *pgen, i int, t time.Time) {
	who := g.r.IntN(len(s.p.team))
	start := workingTime(g.r, t.AddDate(0, 0, between(g.r, 1, 21)))
	slot, appt := "Slot/"+g.id("slot"), "Appointment/"+g.id("appt")
	g.bookingV(slot, appt, 1, s.p.team[who], start, t, t, "booked", encProblem)
	s.bookings = append(s.bookings, booking{idx: i, appt: appt, slot: slot, who: who, start: start, created: t})
}

// cancel cancels a random future booking: new versions of its Appointment
// (cancelled) and Slot (free).
func (s *Simulator) cancel(r *rand.Rand, t time.Time, evs []Event) []Event {
	kept := s.bookings[:0]
	for _, bk := range s.bookings {
		if bk.start.After(t) && s.patients[bk.idx].active {
			kept = append(kept, bk)
		}
	}
	s.bookings = kept
	if len(kept) == 0 {
		return evs
	}
	k := r.IntN(len(kept))
	bk := kept[k]
	s.bookings = append(kept[:k], kept[k+1:]...)
	var b batch
	g := s.pgenFor(bk.idx, &b)
	g.bookingV(bk.slot, bk.appt, 2, s.p.team[bk.who], bk.start, bk.created, t, "cancelled", encProblem)
	return appendBatch(evs, &b, t, KindCancellation)
}

// register adds a new patient and emits their whole previous record.
func (s *Simulator) register(t time.Time, evs []Event) []Event {
	idx := len(s.patients)
	if idx >= maxPatients {
		return evs
	}
	s.patients = append(s.patients, simPatient{regAt: t, active: true, version: 1})
	s.active++
	var b batch
	newRegistrant(s.p, idx, t, &b).generate()
	return appendBatch(evs, &b, t, KindRegistration)
}

// leave records a deduction (active false) or a death (deceasedDateTime)
// as a new version of the Patient. Deaths favour the oldest of a few
// randomly chosen patients.
func (s *Simulator) leave(r *rand.Rand, kind string, t time.Time, evs []Event) []Event {
	i := s.randomPatient(r)
	if i < 0 {
		return evs
	}
	var b batch
	if kind == KindDeath {
		oldest := s.pgenFor(i, &b).birth
		for range 4 {
			if j := s.randomPatient(r); j >= 0 {
				if bj := s.pgenFor(j, &b).birth; bj.Before(oldest) {
					i, oldest = j, bj
				}
			}
		}
	}
	sp := &s.patients[i]
	sp.version++
	if kind == KindDeath {
		sp.death = t
	} else {
		sp.active = false
		s.active--
	}
	b.reset()
	g := s.pgenFor(i, &b)
	g.patient(sp.version, t, sp.active)
	return appendBatch(evs, &b, t, kind)
}

// amendable lists the types an amendment can change.
var amendable = map[string]bool{
	"Observation": true, "Condition": true, "AllergyIntolerance": true,
	"MedicationStatement": true, "Procedure": true, "Immunization": true,
}

// amendOrDelete regenerates a random patient's record and amends one of
// its entries (a new version) or deletes one (entered in error). Only
// entries nothing else refers to are deleted: consultation measurements
// and flags.
func (s *Simulator) amendOrDelete(r *rand.Rand, kind string, t time.Time, evs []Event) []Event {
	i := r.IntN(len(s.patients))
	sp := &s.patients[i]
	var b batch
	s.pgenFor(i, &b).generate()
	var cands []item
	for _, it := range b.items {
		js := b.buf[it.start:it.end]
		if sp.mods[resourceID(js)] < 0 {
			continue
		}
		if kind == KindAmendment && amendable[it.typ] ||
			kind == KindDeletion && (it.typ == "Flag" || it.typ == "Observation" && bytes.Contains(js, []byte(`"encounter":`))) {
			cands = append(cands, it)
		}
	}
	if len(cands) == 0 {
		return evs
	}
	it := pick(r, cands)
	js := b.buf[it.start:it.end]
	id := resourceID(js)
	if sp.mods == nil {
		sp.mods = map[string]int32{}
	}
	if kind == KindDeletion {
		sp.mods[id] = -1
		return append(evs, Event{Time: t, Op: OpDelete, Type: it.typ, ID: id, Kind: kind})
	}
	version := max(sp.mods[id], 1) + 1
	out, err := amend(js, it.typ, int(version), t)
	if err != nil {
		panic("synth: amending generated JSON: " + err.Error()) // our own output always parses
	}
	sp.mods[id] = version
	return append(evs, Event{Time: t, Op: OpUpsert, Type: it.typ, ID: id, JSON: out, Kind: kind})
}

// amend returns a new version of a resource: meta updated, a note saying
// it was amended and, for Observations, status "amended". Number literals
// are kept exactly as written.
func amend(js []byte, typ string, version int, t time.Time) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	meta, _ := m["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["meta"] = meta
	}
	meta["versionId"] = strconv.Itoa(version)
	meta["lastUpdated"] = t.UTC().Format(time.RFC3339)
	if typ == "Observation" {
		m["status"] = "amended"
	}
	note := map[string]any{"text": "Amended by the practice: entry corrected (version " + strconv.Itoa(version) + ")", "time": t.UTC().Format(time.RFC3339)}
	m["note"] = []any{note}
	delete(m, "resourceType")
	var buf bytes.Buffer
	buf.WriteString(`{"resourceType":`)
	buf.Write(appendQuoted(nil, typ))
	buf.WriteByte(',')
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(buf.Bytes(), "\n")
	// Splice: drop the encoded object's opening brace.
	i := bytes.IndexByte(out[len(`{"resourceType":`):], '{') + len(`{"resourceType":`)
	return append(out[:i:i], out[i+1:]...), nil
}
