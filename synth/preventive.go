package synth

import (
	"strconv"
	"time"
)

// hasCondition reports whether the patient has any of the given long-term
// conditions by time t.
func (g *pgen) hasCondition(t time.Time, codes ...string) bool {
	for _, c := range g.conds {
		for _, code := range codes {
			if c.def.Code == code && !c.onset.After(t) {
				return true
			}
		}
	}
	return false
}

// ageAt returns the patient's age in whole years at t.
func (g *pgen) ageAt(t time.Time) int { return int(t.Sub(g.birth).Hours() / (24 * 365.25)) }

// immunisations writes the national programme vaccines given in the
// practice: seasonal flu for the over-65s and at-risk groups, a
// pneumococcal vaccine at 65, and COVID-19 from 2021.
func (g *pgen) immunisations() {
	r := g.r
	first := max(g.histStart.Year(), 2000)
	for y := first; y <= g.end.Year(); y++ {
		autumn := time.Date(y, time.October, 1, 0, 0, 0, 0, time.UTC)
		t := workingTime(r, autumn.AddDate(0, 0, r.IntN(60)))
		if t.Before(g.histStart) || !t.Before(g.end) {
			continue
		}
		age := g.ageAt(t)
		atRisk := g.hasCondition(t, "44054006", "195967001", "13645005", "84114007", "709044004")
		if (age >= 65 || atRisk) && chance(r, 0.75) {
			g.vaccinate(t, vaccines.Flu, "1")
		}
		if age == 65 {
			g.vaccinate(t.AddDate(0, 0, 7), vaccines.Pneumo, "1")
		}
		if y >= 2021 && age >= 18 && chance(r, 0.85) {
			v := vaccines.CovidMRNA
			if y == 2021 && chance(r, 0.4) {
				v = vaccines.Covid
			}
			if y == 2021 || age >= 65 {
				g.vaccinate(t.AddDate(0, 0, -100), v, strconv.Itoa(y-2020))
			}
		}
	}
}

// vaccinate writes a completed Immunization given by a practice nurse.
func (g *pgen) vaccinate(t time.Time, vaccine concept, dose string) {
	if t.Before(g.histStart) || !t.Before(g.end) {
		return
	}
	nurse := pick(g.r, g.p.nurses)
	e := g.b.start()
	e.header("Immunization", g.id("imm"), t.Add(5*time.Minute), false)
	e.s("status", "completed")
	e.cc("vaccineCode", dmdSystem, vaccine.Code, vaccine.Display)
	e.ref("patient", g.ref)
	e.dt("occurrenceDateTime", t)
	e.dt("recorded", t.Add(5*time.Minute))
	e.bo("primarySource", true)
	e.ref("location", g.p.locationRef)
	e.s("lotNumber", "SYN"+strconv.Itoa(t.Year())+string(rune('A'+g.r.IntN(26))))
	e.cc("site", snomedSystem, siteLeftArm.Code, siteLeftArm.Display)
	e.cc("route", snomedSystem, routeIM.Code, routeIM.Display)
	e.ar("performer")
	e.begin()
	e.ref("actor", nurse.PractID)
	e.end()
	e.endArr()
	e.ar("protocolApplied")
	e.begin()
	e.s("doseNumberString", dose)
	e.end()
	e.endArr()
	e.end()
	g.b.finish("Immunization", e)
}

// screening writes cervical screening, NHS health checks and hospital
// episodes with their discharge summaries, year by year.
func (g *pgen) screening() {
	r := g.r
	for t := g.histStart; t.Before(g.end); t = t.AddDate(1, 0, 0) {
		age := g.ageAt(t)
		at := workingTime(r, randTime(r, t, minTime(t.AddDate(1, 0, 0), g.end)))
		if !at.Before(g.end) {
			continue
		}
		if g.female && age >= 25 && age < 65 && chance(r, 0.3) {
			v := g.beginVisit(at, encCheckUp, "", false)
			g.procedure(v, procSmear, at, "")
			g.endVisit(v)
		}
		if age >= 40 && age < 75 && chance(r, 0.18) {
			g.healthCheck(at.AddDate(0, 0, 14))
		}
		pHosp := 0.02
		if age >= 65 {
			pHosp = 0.08
		}
		if chance(r, pHosp) {
			g.hospitalEpisode(at)
		}
	}
}

// healthCheck writes an NHS Health Check consultation.
func (g *pgen) healthCheck(t time.Time) {
	if !t.Before(g.end) {
		return
	}
	v := g.beginVisit(t, encCheckUp, "", false)
	g.bloodPressure(v, t)
	g.weightBMI(v, t)
	g.smoking(v, t)
	g.quantity(v, obsAlcohol, "social-history", t)
	g.quantity(v, obsCholesterol, "laboratory", t)
	g.endVisit(v)
}

// hospitalEpisode writes a hospital procedure, the discharge summary that
// comes back, and the medication reconciliation that follows.
func (g *pgen) hospitalEpisode(t time.Time) {
	r := g.r
	c := pick(r, hospitalProcs)
	if c == procMammography && !g.female {
		c = procColonoscopy
	}
	proc := g.procedure(nil, c, t, g.p.hospitalID)
	back := workingTime(r, t.AddDate(0, 0, between(r, 2, 10)))
	if !back.Before(g.end) {
		return
	}
	g.letter(back, docDischarge, proc, false)
	rec := workingTime(r, back.AddDate(0, 0, between(r, 1, 7)))
	if rec.Before(g.end) {
		v := g.beginVisit(rec, encCheckUp, "", false)
		g.procedure(v, procMedRec, rec, "")
		g.endVisit(v)
	}
}
