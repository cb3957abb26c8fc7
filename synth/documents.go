package synth

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"
)

var labCategory = concept{"108252007", "Laboratory procedure"}

// request writes a ServiceRequest; lab requests go to the hospital
// laboratory, referrals to the hospital's clinics.
func (g *pgen) request(v *visit, c concept, lab bool) string {
	ref := "ServiceRequest/" + g.id("req")
	e := g.b.start()
	e.header("ServiceRequest", idOf(ref), v.t.Add(12*time.Minute), v.sensitive)
	e.s("status", "completed")
	e.s("intent", "order")
	e.ar("category")
	if lab {
		e.ccv(snomedSystem, labCategory.Code, labCategory.Display)
	} else {
		e.ccv(snomedSystem, "3457005", "Patient referral")
	}
	e.endArr()
	e.s("priority", pick(g.r, []string{"routine", "routine", "routine", "urgent"}))
	e.cc("code", snomedSystem, c.Code, c.Display)
	e.ref("subject", g.ref)
	e.ref("encounter", v.ref)
	e.dt("authoredOn", v.t)
	e.ref("requester", v.who.PractID)
	e.ar("performer")
	e.refv(g.p.hospitalID)
	e.endArr()
	e.end()
	g.b.finish("ServiceRequest", e)
	return ref
}

// referral writes a referral and, when it comes back before the record
// ends, the clinic letter and the task to review it.
func (g *pgen) referral(v *visit, c concept) {
	sr := g.request(v, c, false)
	back := workingTime(g.r, v.t.AddDate(0, 0, between(g.r, 21, 70)))
	if back.Before(g.end) {
		g.letter(back, docClinic, sr, v.sensitive)
	}
}

// labReport writes a laboratory request, its report and result values.
func (g *pgen) labReport(v *visit, t time.Time) {
	panel, tests := panelFBC, fbcResults
	if chance(g.r, 0.5) {
		panel, tests = panelLabs, renalResults
	}
	sr := g.request(v, panel, true)
	at := t.Add(time.Duration(between(g.r, 20, 50)) * time.Hour)
	if !at.Before(g.end) {
		return
	}
	results := make([]string, 0, len(tests))
	for _, l := range tests {
		results = append(results, g.quantity(nil, l, "laboratory", at))
	}
	ref := "DiagnosticReport/" + g.id("rep")
	e := g.b.start()
	e.header("DiagnosticReport", idOf(ref), at.Add(time.Hour), v.sensitive)
	e.ar("basedOn")
	e.refv(sr)
	e.endArr()
	e.s("status", "final")
	e.ar("category")
	e.ccv(v2Diagnostic, "LAB", "Laboratory")
	e.endArr()
	e.cc("code", snomedSystem, panel.Code, panel.Display)
	e.ref("subject", g.ref)
	e.dt("effectiveDateTime", at)
	e.dt("issued", at.Add(time.Hour))
	e.ar("performer")
	e.refv(g.p.hospitalID)
	e.endArr()
	e.ar("result")
	for _, res := range results {
		e.refv(res)
	}
	e.endArr()
	e.end()
	g.b.finish("DiagnosticReport", e)
}

// procedure writes a completed Procedure; performer "" means the visit's
// clinician (or the hospital when there is no visit).
func (g *pgen) procedure(v *visit, c concept, t time.Time, performer string) string {
	ref := "Procedure/" + g.id("proc")
	sensitive := v != nil && v.sensitive
	e := g.b.start()
	e.header("Procedure", idOf(ref), t.Add(30*time.Minute), sensitive)
	e.s("status", "completed")
	e.cc("code", snomedSystem, c.Code, c.Display)
	e.ref("subject", g.ref)
	if v != nil {
		e.ref("encounter", v.ref)
		if performer == "" {
			performer = v.who.PractID
		}
	}
	if performer == "" {
		performer = g.p.hospitalID
	}
	e.dt("performedDateTime", t)
	e.ar("performer")
	e.begin()
	e.ref("actor", performer)
	e.end()
	e.endArr()
	e.end()
	g.b.finish("Procedure", e)
	return ref
}

// letterText returns a short synthetic letter about the patient.
func (g *pgen) letterText(t time.Time, typ concept, html bool) []byte {
	var b []byte
	name := g.given + " " + g.family
	if html {
		b = append(b, "<html><body><h1>"...)
		b = append(b, typ.Display...)
		b = append(b, "</h1><p>Re: "...)
		b = append(b, name...)
		b = append(b, ", NHS number "...)
		b = append(b, g.nhs...)
		b = append(b, "</p><p>Seen on "...)
		b = t.AppendFormat(b, "2 January 2006")
		b = append(b, ". Findings reassuring; please continue current management and review in the practice in three months.</p><p>Synthetic letter: not a real patient.</p></body></html>"...)
		return b
	}
	b = append(b, typ.Display...)
	b = append(b, "\n\nRe: "...)
	b = append(b, name...)
	b = append(b, "\nNHS number: "...)
	b = append(b, g.nhs...)
	b = append(b, "\nDate: "...)
	b = t.AppendFormat(b, "2 January 2006")
	b = append(b, "\n\nDear Dr "...)
	b = append(b, g.gp.Family...)
	b = append(b, ",\n\nThank you for your referral. Examination was unremarkable. No change to medication is needed.\n\nSynthetic letter: not a real patient.\n"...)
	return b
}

// letter writes a document arriving from the hospital: a Binary holding
// the letter, its DocumentReference, and a Task for the GP to review it.
func (g *pgen) letter(t time.Time, typ concept, related string, sensitive bool) {
	html := chance(g.r, 0.4)
	body := g.letterText(t, typ, html)
	ctype := "text/plain; charset=utf-8"
	if html {
		ctype = "text/html; charset=utf-8"
	}
	bin := "Binary/" + g.id("bin")
	e := g.b.start()
	e.header("Binary", idOf(bin), t, sensitive)
	e.s("contentType", ctype)
	e.ref("securityContext", g.ref)
	e.k("data")
	e.b = append(e.b, '"')
	e.b = base64.StdEncoding.AppendEncode(e.b, body)
	e.b = append(e.b, '"')
	e.need = true
	e.end()
	g.b.finish("Binary", e)

	sum := sha1.Sum(body)
	doc := "DocumentReference/" + g.id("doc")
	e = g.b.start()
	e.header("DocumentReference", idOf(doc), t, sensitive || chance(g.r, 0.02))
	e.s("status", "current")
	e.cc("type", snomedSystem, typ.Code, typ.Display)
	e.ref("subject", g.ref)
	e.dt("date", t)
	e.ar("author")
	e.refv(g.p.hospitalID)
	e.endArr()
	e.ref("custodian", g.p.orgID)
	e.s("description", typ.Display+" from "+g.p.town.Name+" Teaching Hospitals")
	e.ar("content")
	e.begin()
	e.ob("attachment")
	e.s("contentType", ctype)
	e.s("url", bin)
	e.i("size", int64(len(body)))
	e.s("hash", base64.StdEncoding.EncodeToString(sum[:]))
	e.s("title", typ.Display)
	e.dt("creation", t)
	e.end()
	e.end()
	e.endArr()
	if related != "" {
		e.ob("context")
		e.ar("related")
		e.refv(related)
		e.endArr()
		e.end()
	}
	e.end()
	g.b.finish("DocumentReference", e)
	g.task(t, doc, "Review "+typ.Display+" "+strconv.Itoa(len(body))+" bytes")
}

// task writes a Task asking the usual GP to review focus.
func (g *pgen) task(t time.Time, focus, text string) {
	ref := "Task/" + g.id("task")
	done := t.AddDate(0, 0, between(g.r, 1, 10))
	e := g.b.start()
	status := "completed"
	updated := done
	if !done.Before(g.p.base) {
		status, updated = "requested", t
	}
	e.header("Task", idOf(ref), updated, false)
	e.s("status", status)
	e.s("intent", "order")
	e.s("priority", "routine")
	e.cct("code", "Review document")
	e.s("description", text)
	e.ref("focus", focus)
	e.ref("for", g.ref)
	e.dt("authoredOn", t)
	e.dt("lastModified", updated)
	e.ref("requester", g.p.orgID)
	e.ref("owner", g.gp.PractID)
	e.end()
	g.b.finish("Task", e)
}
