package synth

import "time"

// appointment writes the Slot and Appointment behind a consultation in the
// last three years and returns the Appointment reference ("" if none).
func (g *pgen) appointment(v *visit, typ concept) string {
	if v.t.Before(g.p.base.AddDate(-3, 0, 0)) {
		return ""
	}
	if chance(g.r, 0.06) { // an earlier booking the patient cancelled
		g.booking(v.who, v.t.AddDate(0, 0, -between(g.r, 2, 14)), v.t.AddDate(0, 0, -20), "cancelled", typ)
	}
	return g.booking(v.who, v.t, v.t.AddDate(0, 0, -between(g.r, 0, 14)), "fulfilled", typ)
}

// booking writes a Slot and an Appointment for the patient with who at t
// and returns the Appointment reference.
func (g *pgen) booking(who staff, t, created time.Time, status string, typ concept) string {
	slot, appt := "Slot/"+g.id("slot"), "Appointment/"+g.id("appt")
	updated := minTime(maxTime(created, t), g.end)
	g.bookingV(slot, appt, 1, who, t, created, updated, status, typ)
	return appt
}

// bookingV writes version version of a Slot and its Appointment.
func (g *pgen) bookingV(slot, appt string, version int, who staff, t, created, updated time.Time, status string, typ concept) {
	end := t.Add(10 * time.Minute)
	e := g.b.start()
	e.headerV("Slot", idOf(slot), version, updated, false)
	e.ar("serviceCategory")
	e.ccv(snomedSystem, gpService.Code, gpService.Display)
	e.endArr()
	e.ref("schedule", who.SchedID)
	if status == "cancelled" {
		e.s("status", "free")
	} else {
		e.s("status", "busy")
	}
	e.dt("start", t)
	e.dt("end", end)
	e.end()
	g.b.finish("Slot", e)

	e = g.b.start()
	e.headerV("Appointment", idOf(appt), version, updated, false)
	e.s("status", status)
	if status == "cancelled" {
		e.cct("cancelationReason", "Patient cancelled")
	}
	e.ar("serviceCategory")
	e.ccv(snomedSystem, gpService.Code, gpService.Display)
	e.endArr()
	e.s("description", typ.Display)
	e.dt("start", t)
	e.dt("end", end)
	e.i("minutesDuration", 10)
	e.ar("slot")
	e.refv(slot)
	e.endArr()
	e.dt("created", created)
	e.ar("participant")
	for _, actor := range [...]string{g.ref, who.PractID, g.p.locationRef} {
		e.begin()
		e.ref("actor", actor)
		e.s("required", "required")
		e.s("status", "accepted")
		e.end()
	}
	e.endArr()
	e.end()
	g.b.finish("Appointment", e)
}

// provenance writes who recorded a consultation.
func (g *pgen) provenance(v *visit) {
	e := g.b.start()
	e.header("Provenance", g.id("prov"), v.t.Add(20*time.Minute), v.sensitive)
	e.ar("target") // the Encounter only: entries may later be deleted in error
	e.refv(v.ref)
	e.endArr()
	e.dt("recorded", v.t.Add(20*time.Minute))
	e.cc("activity", provActivity, "CREATE", "create")
	e.ar("agent")
	e.begin()
	e.cc("type", provAgentType, "author", "Author")
	e.ref("who", v.who.PractID)
	e.ref("onBehalfOf", g.p.orgID)
	e.end()
	e.endArr()
	e.end()
	g.b.finish("Provenance", e)
}

// audit writes an AuditEvent: who did action (C, R, U or D) to what, when.
func (g *pgen) audit(t time.Time, who staff, what, action string, sensitive bool) {
	sub := "create"
	switch action {
	case "R":
		sub = "read"
	case "U":
		sub = "update"
	case "D":
		sub = "delete"
	}
	e := g.b.start()
	e.header("AuditEvent", g.id("audit"), t, sensitive)
	e.ob("type")
	e.s("system", auditTypeSystem)
	e.s("code", "rest")
	e.s("display", "RESTful Operation")
	e.end()
	e.ar("subtype")
	e.coding(auditSubtype, sub, "")
	e.endArr()
	e.s("action", action)
	e.dt("recorded", t)
	e.s("outcome", "0")
	e.ar("agent")
	e.begin()
	e.ref("who", who.PractID)
	e.bo("requestor", true)
	e.end()
	e.endArr()
	e.ob("source")
	e.s("site", g.p.ods)
	e.ref("observer", g.p.orgID)
	e.end()
	e.ar("entity")
	e.begin()
	e.ref("what", what)
	e.end()
	e.begin()
	e.ref("what", g.ref)
	e.end()
	e.endArr()
	e.end()
	g.b.finish("AuditEvent", e)
}

// flags writes record flags: a peanut-free diet for nut allergies and, for
// a few patients, a communication needs flag.
func (g *pgen) flags() {
	if g.nutAllergy {
		g.flag(flagPeanut, "")
	}
	if chance(g.r, 0.04) {
		g.flag(concept{}, pick(g.r, []string{
			"Hearing impaired: offer text relay", "Interpreter required", "Carer: contact before changing appointments",
		}))
	}
}

func (g *pgen) flag(c concept, text string) {
	t := workingTime(g.r, randTime(g.r, g.histStart, g.end))
	e := g.b.start()
	e.header("Flag", g.id("flag"), t, false)
	e.s("status", "active")
	if text != "" {
		e.cct("code", text)
	} else {
		e.cc("code", snomedSystem, c.Code, c.Display)
	}
	e.ref("subject", g.ref)
	e.period("period", t, time.Time{})
	e.ref("author", g.gp.PractID)
	e.end()
	g.b.finish("Flag", e)
}

// allergies writes the patient's allergies, or a "no known drug allergy"
// entry for some of those without.
func (g *pgen) allergies() {
	r := g.r
	if !chance(r, 0.2) {
		if chance(r, 0.4) {
			g.allergy(allergyNKDA, "", false)
		}
		return
	}
	for range between(r, 1, 2) {
		i := r.IntN(len(allergySubstances))
		category := [...]string{"medication", "medication", "food", "environment", "environment", "food"}[i]
		g.allergy(allergySubstances[i], category, true)
		if allergySubstances[i].Code == "91934008" {
			g.nutAllergy = true
		}
	}
}

func (g *pgen) allergy(c concept, category string, reaction bool) {
	r := g.r
	t := minTime(workingTime(r, randTime(r, g.histStart, g.end)), g.end) // recorded by now, never after
	ref := "AllergyIntolerance/" + g.id("alg")
	e := g.b.start()
	e.header("AllergyIntolerance", idOf(ref), t, false)
	e.cc("clinicalStatus", allergyClinical, "active", "Active")
	e.cc("verificationStatus", allergyVerify, "confirmed", "Confirmed")
	e.s("type", "allergy")
	if category != "" {
		e.ar("category")
		e.sv(category)
		e.endArr()
	}
	e.cc("code", snomedSystem, c.Code, c.Display)
	e.ref("patient", g.ref)
	e.dt("recordedDate", t)
	e.ref("recorder", g.gp.PractID)
	if reaction {
		m := pick(r, manifestations)
		e.ar("reaction")
		e.begin()
		e.ar("manifestation")
		e.ccv(snomedSystem, m.Code, m.Display)
		e.endArr()
		if m.Code == "39579001" {
			e.s("severity", "severe")
		} else {
			e.s("severity", pick(r, []string{"mild", "moderate"}))
		}
		e.end()
		e.endArr()
	}
	e.end()
	g.b.finish("AllergyIntolerance", e)
	g.allergyRefs = append(g.allergyRefs, ref)
}

// allergyList writes the allergies List: its entries, or why it is empty.
func (g *pgen) allergyList() {
	e := g.b.start()
	e.header("List", g.id("list"), g.end, false)
	e.s("status", "current")
	e.s("mode", "snapshot")
	e.s("title", listAllergies.Display)
	e.cc("code", snomedSystem, listAllergies.Code, listAllergies.Display)
	e.ref("subject", g.ref)
	e.dt("date", g.end)
	e.ref("source", g.gp.PractID)
	if len(g.allergyRefs) == 0 {
		e.cc("emptyReason", "http://terminology.hl7.org/CodeSystem/list-empty-reason", "notasked", "Not Asked")
	} else {
		e.ar("entry")
		for _, ref := range g.allergyRefs {
			e.begin()
			e.ref("item", ref)
			e.end()
		}
		e.endArr()
	}
	e.end()
	g.b.finish("List", e)
}
