package synth

import "time"

const therapyType = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"

// longTermConditions writes each long-term condition, diagnosed in a
// consultation when that falls inside the record (or carried over from the
// previous practice otherwise), with its repeat medication authorisations.
func (g *pgen) longTermConditions() {
	r := g.r
	for i := range g.conds {
		c := &g.conds[i]
		var v *visit
		if !c.onset.Before(g.histStart) {
			at := workingTime(r, c.onset)
			if at.Before(g.end) {
				c.onset = at
				v = g.beginVisit(at, encProblem, "", c.def.Sensitive)
			}
		}
		c.ref = g.problem(v, c.def.concept, c.onset, time.Time{}, c.def.Sensitive)
		start := maxTime(c.onset, g.histStart)
		if v != nil {
			g.onsetExtras(v, c)
		}
		for _, d := range c.meds {
			pl := plan{drug: d, start: start, next: start, every: 28 * between(r, 1, 2)}
			pl.ref = g.authorise(v, d, start, c.ref, c.def.Sensitive)
			c.plans = append(c.plans, pl)
		}
		if v != nil {
			g.endVisit(v)
		}
	}
}

// onsetExtras records what is typically done when a condition is diagnosed.
func (g *pgen) onsetExtras(v *visit, c *condition) {
	switch c.def.Code {
	case "49436004", "84114007":
		g.procedure(v, procECG, v.t, "")
	case "195967001", "13645005":
		g.procedure(v, procSpirometry, v.t, "")
	case "59621000":
		g.bloodPressure(v, v.t)
	}
}

// medHead writes the common start of a MedicationRequest.
func (g *pgen) medHead(ref string, d drug, status, intent, course string, t time.Time, who staff, sensitive bool) *enc {
	e := g.b.start()
	e.header("MedicationRequest", idOf(ref), t.Add(5*time.Minute), sensitive)
	e.s("status", status)
	e.s("intent", intent)
	e.cc("medicationCodeableConcept", dmdSystem, d.Code, d.Display)
	e.ref("subject", g.ref)
	e.dt("authoredOn", t)
	e.ref("requester", who.PractID)
	e.cc("courseOfTherapyType", therapyType, course, "")
	return e
}

// dosage writes dosageInstruction and dispenseRequest for d.
func (g *pgen) dosage(e *enc, d drug) {
	e.ar("dosageInstruction")
	e.begin()
	e.s("text", d.Dose)
	e.cc("route", snomedSystem, routeOral.Code, routeOral.Display)
	e.end()
	e.endArr()
	e.ob("dispenseRequest")
	e.ob("quantity")
	e.num("value", d.Qty)
	e.s("unit", d.Unit)
	e.end()
	e.end()
}

// authorise writes a repeat authorisation (intent plan) and the
// MedicationStatement that records the patient is taking it.
func (g *pgen) authorise(v *visit, d drug, t time.Time, reason string, sensitive bool) string {
	ref := "MedicationRequest/" + g.id("med")
	who := g.gp
	if v != nil {
		who = v.who
	}
	status := "active"
	if !g.death.IsZero() {
		status = "stopped"
	}
	e := g.medHead(ref, d, status, "plan", "continuous", t, who, sensitive)
	e.ar("reasonReference")
	e.refv(reason)
	e.endArr()
	g.dosage(e, d)
	e.end()
	g.b.finish("MedicationRequest", e)
	g.statement(v, d, ref, t, status == "active", sensitive)
	return ref
}

// statement writes a MedicationStatement based on the request ref.
func (g *pgen) statement(v *visit, d drug, basedOn string, t time.Time, active, sensitive bool) {
	ref := "MedicationStatement/" + g.id("mst")
	e := g.b.start()
	e.header("MedicationStatement", idOf(ref), t.Add(6*time.Minute), sensitive)
	e.ar("basedOn")
	e.refv(basedOn)
	e.endArr()
	if active {
		e.s("status", "active")
	} else {
		e.s("status", "completed")
	}
	e.cc("medicationCodeableConcept", dmdSystem, d.Code, d.Display)
	e.ref("subject", g.ref)
	if v != nil {
		e.ref("context", v.ref)
	}
	e.ob("effectivePeriod")
	e.dt("start", t)
	e.end()
	e.dt("dateAsserted", t)
	e.ar("dosage")
	e.begin()
	e.s("text", d.Dose)
	e.end()
	e.endArr()
	e.end()
	g.b.finish("MedicationStatement", e)
}

// acuteMed writes a one-off prescription issued in a consultation.
func (g *pgen) acuteMed(v *visit, d drug) {
	ref := "MedicationRequest/" + g.id("med")
	e := g.medHead(ref, d, "completed", "order", "acute", v.t, v.who, v.sensitive)
	e.ob("encounter")
	e.s("reference", v.ref)
	e.end()
	g.dosage(e, d)
	e.end()
	g.b.finish("MedicationRequest", e)
	g.statement(v, d, ref, v.t, false, v.sensitive)
}

// repeatIssues writes the repeat prescriptions issued in [from, to).
func (g *pgen) repeatIssues(from, to time.Time) {
	for i := range g.conds {
		c := &g.conds[i]
		for j := range c.plans {
			pl := &c.plans[j]
			for pl.next.Before(to) {
				if !pl.next.Before(from) {
					g.issue(pl, workingTime(g.r, pl.next), c.def.Sensitive)
				}
				pl.next = pl.next.AddDate(0, 0, pl.every)
			}
		}
	}
}

// issue writes one repeat prescription based on its authorisation.
func (g *pgen) issue(pl *plan, t time.Time, sensitive bool) {
	if !t.Before(g.end) {
		return
	}
	ref := "MedicationRequest/" + g.id("med")
	e := g.medHead(ref, pl.drug, "completed", "order", "continuous", t, g.gp, sensitive)
	if pl.ref != "" {
		e.ar("basedOn")
		e.refv(pl.ref)
		e.endArr()
	}
	g.dosage(e, pl.drug)
	e.end()
	g.b.finish("MedicationRequest", e)
}
