package synth

import (
	"math"
	"time"
)

// visit is the context of one consultation.
type visit struct {
	ref       string // "Encounter/..."
	t         time.Time
	who       staff
	sensitive bool
}

// encounterRate returns the expected consultations a year for the patient
// at the given age with n active long-term conditions.
func (g *pgen) encounterRate(age, n int) float64 {
	var rate float64
	switch {
	case age < 5:
		rate = 4
	case age < 16:
		rate = 1.5
	case age < 45:
		rate = 2
	case age < 65:
		rate = 3
	default:
		rate = 4.5
	}
	if g.female && age >= 16 && age < 65 {
		rate += 1
	}
	return rate + 1.5*float64(n)
}

// history walks the record month by month from its start to its end,
// writing consultations, repeat medication issues and results.
func (g *pgen) history() {
	r := g.r
	for t := g.histStart; t.Before(g.end); t = t.AddDate(0, 1, 0) {
		monthEnd := minTime(t.AddDate(0, 1, 0), g.end)
		age := int(t.Sub(g.birth).Hours() / (24 * 365.25))
		var active []*condition
		for i := range g.conds {
			if !g.conds[i].onset.After(t) {
				active = append(active, &g.conds[i])
			}
		}
		n := poisson(r, g.encounterRate(age, len(active))/12)
		for range n {
			at := workingTime(r, randTime(r, t, monthEnd))
			if !at.Before(g.end) {
				continue
			}
			if len(active) > 0 && chance(r, 0.4) {
				g.review(at, pick(r, active))
			} else {
				g.acute(at, age)
			}
		}
		g.repeatIssues(t, monthEnd)
	}
}

// beginVisit writes the Encounter of a consultation.
func (g *pgen) beginVisit(t time.Time, typ concept, reason string, sensitive bool) *visit {
	who := g.gp
	if chance(g.r, 0.3) {
		who = pick(g.r, g.p.team)
	}
	v := &visit{ref: "Encounter/" + g.id("enc"), t: t, who: who, sensitive: sensitive}
	appt := g.appointment(v, typ)
	dur := time.Duration(10+5*g.r.IntN(3)) * time.Minute
	e := g.b.start()
	e.header("Encounter", idOf(v.ref), t.Add(dur), sensitive)
	e.s("status", "finished")
	e.ob("class")
	e.s("system", actCodeSystem)
	if chance(g.r, 0.75) {
		e.s("code", "AMB")
		e.s("display", "ambulatory")
	} else {
		e.s("code", "VR")
		e.s("display", "virtual")
	}
	e.end()
	e.ar("type")
	e.ccv(snomedSystem, typ.Code, typ.Display)
	e.endArr()
	e.ref("subject", g.ref)
	if appt != "" {
		e.ar("appointment")
		e.refv(appt)
		e.endArr()
	}
	e.ar("participant")
	e.begin()
	e.ref("individual", who.PractID)
	e.end()
	e.endArr()
	e.period("period", t, t.Add(dur))
	if reason != "" {
		e.ar("reasonReference")
		e.refv(reason)
		e.endArr()
	}
	e.ar("location")
	e.begin()
	e.ref("location", g.p.locationRef)
	e.end()
	e.endArr()
	e.ref("serviceProvider", g.p.orgID)
	e.end()
	g.b.finish("Encounter", e)
	return v
}

// endVisit writes the Provenance and AuditEvent of a consultation.
func (g *pgen) endVisit(v *visit) {
	g.provenance(v)
	g.audit(v.t.Add(20*time.Minute), v.who, v.ref, "C", v.sensitive)
}

// acute writes a consultation for a self-limiting problem.
func (g *pgen) acute(t time.Time, age int) {
	r := g.r
	pr := pick(r, acuteProblems)
	if age < 40 && (pr.Code == "22298006" || pr.Code == "230690007") {
		pr = acuteProblems[0]
	}
	v := g.beginVisit(t, pick(r, encTypes), "", false)
	if chance(r, 0.35) {
		g.quantity(v, obsTemp, "vital-signs", t)
		g.quantity(v, obsHeartRate, "vital-signs", t)
		g.quantity(v, obsResp, "vital-signs", t)
	}
	if chance(r, 0.7) {
		g.problem(v, pr.concept, t, t.AddDate(0, 0, between(r, 5, 40)), false)
	}
	if len(pr.Meds) > 0 && chance(r, 0.6) {
		g.acuteMed(v, pick(r, pr.Meds))
	}
	if chance(r, 0.04) {
		g.referral(v, pick(r, referralCodes))
	}
	g.endVisit(v)
}

// review writes a long-term condition review with measurements.
func (g *pgen) review(t time.Time, c *condition) {
	r := g.r
	typ := encCheckUp
	switch c.def.Code {
	case "59621000":
		typ = encHTN
	case "195967001", "13645005":
		typ = encAsthma
	}
	v := g.beginVisit(t, typ, c.ref, c.def.Sensitive)
	g.bloodPressure(v, t)
	if chance(r, 0.5) {
		g.weightBMI(v, t)
	}
	if chance(r, 0.15) {
		g.smoking(v, t)
	}
	for _, l := range c.def.Labs {
		if chance(r, 0.5) {
			g.quantity(v, l, "laboratory", t)
		}
	}
	if chance(r, 0.25) {
		g.labReport(v, t)
	}
	if chance(r, 0.03) {
		g.referral(v, pick(r, referralCodes))
	}
	g.endVisit(v)
}

// problem writes a Condition; a zero abated time means still active.
func (g *pgen) problem(v *visit, c concept, onset, abated time.Time, sensitive bool) string {
	ref := "Condition/" + g.id("cond")
	recorded := onset
	if v != nil {
		recorded = v.t
	}
	e := g.b.start()
	e.header("Condition", idOf(ref), recorded.Add(15*time.Minute), sensitive)
	if abated.IsZero() || abated.After(g.p.base) {
		e.cc("clinicalStatus", condClinical, "active", "Active")
	} else {
		e.cc("clinicalStatus", condClinical, "resolved", "Resolved")
	}
	e.cc("verificationStatus", condVerification, "confirmed", "Confirmed")
	e.ar("category")
	e.ccv(condCategory, "problem-list-item", "Problem List Item")
	e.endArr()
	e.cc("code", snomedSystem, c.Code, c.Display)
	e.ref("subject", g.ref)
	if v != nil {
		e.ref("encounter", v.ref)
	}
	e.dt("onsetDateTime", onset)
	if !abated.IsZero() && !abated.After(g.p.base) {
		e.dt("abatementDateTime", abated)
	}
	e.dt("recordedDate", recorded)
	who := g.gp
	if v != nil {
		who = v.who
	}
	e.ref("recorder", who.PractID)
	e.end()
	g.b.finish("Condition", e)
	return ref
}

// value draws a value of l in its range at its precision.
func (g *pgen) value(l labTest) string {
	v := l.Lo + (l.Hi-l.Lo)*g.r.Float64()
	scale := math.Pow(10, float64(l.DP))
	return fixed(math.Round(v*scale)/scale, l.DP)
}

// obsHead writes the common start of an Observation.
func (g *pgen) obsHead(ref string, v *visit, c concept, category string, t time.Time, sensitive bool) *enc {
	e := g.b.start()
	e.header("Observation", idOf(ref), t.Add(10*time.Minute), sensitive)
	e.s("status", "final")
	e.ar("category")
	e.ccv(obsCategory, category, "")
	e.endArr()
	e.cc("code", snomedSystem, c.Code, c.Display)
	e.ref("subject", g.ref)
	if v != nil {
		e.ref("encounter", v.ref)
	}
	e.dt("effectiveDateTime", t)
	e.dt("issued", t.Add(5*time.Minute))
	e.ar("performer")
	if v != nil {
		e.refv(v.who.PractID)
	} else {
		e.refv(g.p.hospitalID)
	}
	e.endArr()
	return e
}

// quantity writes a numeric Observation and returns its reference.
func (g *pgen) quantity(v *visit, l labTest, category string, t time.Time) string {
	ref := "Observation/" + g.id("obs")
	sensitive := v != nil && v.sensitive
	e := g.obsHead(ref, v, l.concept, category, t, sensitive)
	e.qty("valueQuantity", g.value(l), l.Unit, l.UCUM)
	e.end()
	g.b.finish("Observation", e)
	return ref
}

// bloodPressure writes a blood pressure panel with its two components.
func (g *pgen) bloodPressure(v *visit, t time.Time) {
	ref := "Observation/" + g.id("obs")
	e := g.obsHead(ref, v, obsBP, "vital-signs", t, v.sensitive)
	sys := between(g.r, 105, 175)
	dia := min(between(g.r, 60, 100), sys-25)
	e.ar("component")
	e.begin()
	e.cc("code", snomedSystem, obsSystolic.Code, obsSystolic.Display)
	e.qty("valueQuantity", itoa(sys), "mmHg", "mm[Hg]")
	e.end()
	e.begin()
	e.cc("code", snomedSystem, obsDiastolic.Code, obsDiastolic.Display)
	e.qty("valueQuantity", itoa(dia), "mmHg", "mm[Hg]")
	e.end()
	e.endArr()
	e.end()
	g.b.finish("Observation", e)
}

// weightBMI writes weight, height and the BMI derived from them.
func (g *pgen) weightBMI(v *visit, t time.Time) {
	g.quantity(v, obsWeight, "vital-signs", t)
	if chance(g.r, 0.3) {
		g.quantity(v, obsHeight, "vital-signs", t)
	}
	g.quantity(v, obsBMI, "vital-signs", t)
}

// smoking writes a smoking status Observation.
func (g *pgen) smoking(v *visit, t time.Time) {
	ref := "Observation/" + g.id("obs")
	e := g.b.start()
	e.header("Observation", idOf(ref), t.Add(10*time.Minute), v.sensitive)
	e.s("status", "final")
	e.ar("category")
	e.ccv(obsCategory, "social-history", "")
	e.endArr()
	e.cc("code", loincSystem, smokingCode.Code, smokingCode.Display)
	e.ref("subject", g.ref)
	e.ref("encounter", v.ref)
	e.dt("effectiveDateTime", t)
	e.ar("performer")
	e.refv(v.who.PractID)
	e.endArr()
	s := smokingValues[g.idx%len(smokingValues)]
	e.cc("valueCodeableConcept", snomedSystem, s.Code, s.Display)
	e.end()
	g.b.finish("Observation", e)
}

func itoa(n int) string { return string(pad(nil, n, 1)) }
