package synth

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/dtm-project/dtm/ukcore"
)

// maxPatients is the number of distinct synthetic NHS numbers available:
// two candidates per patient in the 999 range of 10^6 numbers.
const maxPatients = 500000

// condition is a long-term condition a patient has, with its resource id.
type condition struct {
	def   *chronic
	onset time.Time
	ref   string // "Condition/..."
	meds  []drug
	plans []plan
}

// plan is a repeat medication authorisation and the time of its next issue.
type plan struct {
	ref   string // "MedicationRequest/..."
	drug  drug
	start time.Time
	next  time.Time
	every int // days between issues
}

// pgen generates one patient's whole record into a batch.
type pgen struct {
	p   *practice
	r   *rand.Rand
	b   *batch
	idx int
	pid string // Patient id
	ref string // "Patient/" + pid
	n   int    // resource counter for ids
	ns  string // id namespace inserted after the patient number ("" or "sNNN")

	female                bool
	given, family, prefix string
	birth, regStart       time.Time
	histStart             time.Time // records start here (before regStart for new registrants)
	created               time.Time // Patient meta.lastUpdated
	death, end            time.Time // death is zero when alive; end = min(base, death)
	age                   int
	nhs                   string
	gp                    staff
	conds                 []condition
	allergyRefs           []string
	nutAllergy            bool
}

// newPgen prepares the generator for patient idx; nothing is written yet.
func newPgen(p *practice, idx int, b *batch) *pgen {
	g := &pgen{p: p, r: newRand(p.opts.Seed, streamPatient, uint64(idx)), b: b, idx: idx}
	g.pid = "pat-" + string(pad(nil, idx+1, 6))
	g.ref = "Patient/" + g.pid
	g.demographics()
	return g
}

// id returns a new resource id "<prefix>-<patient>-<n>" unique in the practice.
func (g *pgen) id(prefix string) string {
	g.n++
	b := make([]byte, 0, 24)
	b = append(b, prefix...)
	b = append(b, '-')
	b = pad(b, g.idx+1, 6)
	b = append(b, '-')
	b = append(b, g.ns...)
	b = pad(b, g.n, 5)
	return string(b)
}

// nhsNumber returns the patient's synthetic NHS number: 999, six digits
// from a seed-dependent permutation of the index, and the modulus-11 check
// digit. Of the two candidates 2k and 2k+1 at most one lacks a valid check
// digit (their weighted sums differ by 2 mod 11), so numbers never collide.
func nhsNumber(seed uint64, idx int) string {
	k := (uint64(idx)*7919 + mix(seed)%maxPatients) % maxPatients
	for d := uint64(0); d < 2; d++ {
		nine := "999" + string(pad(nil, int(2*k+d), 6))
		if c := ukcore.NHSCheckDigit(nine); c >= 0 && c <= 9 {
			return nine + strconv.Itoa(c)
		}
	}
	panic("unreachable: two consecutive NHS number candidates invalid")
}

// demographics decides who the patient is and what long-term conditions
// they have, using the patient's own random stream.
func (g *pgen) demographics() {
	r, base := g.r, g.p.base
	switch u := r.Float64(); {
	case u < 0.80:
		g.age = r.IntN(65)
	case u < 0.95:
		g.age = between(r, 65, 84)
	default:
		g.age = between(r, 85, 101)
	}
	g.birth = base.AddDate(-g.age-1, 0, 0).Add(time.Duration(r.IntN(365*24)) * time.Hour).Truncate(24 * time.Hour)
	g.female = chance(r, 0.51)
	if g.female {
		g.given, g.prefix = pick(r, givenFemale), pick(r, femalePrefixes[:3])
	} else {
		g.given, g.prefix = pick(r, givenMale), "Mr"
	}
	if g.age < 16 {
		g.prefix = ""
	}
	g.family = pick(r, familyNames)
	g.nhs = nhsNumber(g.p.opts.Seed, g.idx)
	g.gp = pick(r, g.p.gps)
	years := min(float64(g.age)+0.5, r.ExpFloat64()*12+0.2)
	if g.age < 30 && chance(r, 0.4) {
		years = float64(g.age) + 0.5
	}
	g.regStart = base.Add(-time.Duration(years * 365.25 * 24 * float64(time.Hour))).Truncate(time.Hour)
	if g.regStart.Before(g.birth) {
		g.regStart = g.birth.AddDate(0, 0, 14)
	}
	g.histStart = g.regStart
	g.created = g.regStart.Add(time.Hour)
	g.end = base
	pDeath := 0.004
	if g.age >= 80 {
		pDeath = 0.06
	} else if g.age >= 65 {
		pDeath = 0.015
	}
	if chance(r, pDeath) {
		from := maxTime(g.regStart.AddDate(0, 1, 0), base.AddDate(-3, 0, 0))
		if from.Before(base) {
			g.death = randTime(r, from, base)
			g.end = g.death
		}
	}
	g.chooseConditions()
}

func (g *pgen) chooseConditions() {
	r := g.r
	for i := range chronicConditions {
		c := &chronicConditions[i]
		if g.age < c.MinAge {
			continue
		}
		factor := min(max(float64(g.age-c.MinAge+10)/40, 0.3), 2.0)
		if !chance(r, c.Prevalence*factor) {
			continue
		}
		earliest := g.birth.AddDate(c.MinAge, 0, 0)
		onset := randTime(r, earliest, g.end)
		cd := condition{def: c, onset: onset}
		if len(c.Meds) > 0 {
			cd.meds = append(cd.meds, pick(r, c.Meds))
			if len(c.Meds) > 2 && chance(r, 0.3) {
				if m := pick(r, c.Meds); m.Code != cd.meds[0].Code {
					cd.meds = append(cd.meds, m)
				}
			}
		}
		g.conds = append(g.conds, cd)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// generate writes the patient's whole record.
func (g *pgen) generate() {
	g.patient(1, g.created, true)
	g.allergies()
	g.longTermConditions()
	g.history()
	g.immunisations()
	g.screening()
	g.flags()
	g.allergyList()
}

// patient writes the Patient resource at the given version.
func (g *pgen) patient(version int, updated time.Time, active bool) {
	r := newRand(g.p.opts.Seed, streamPatient^0xadd, uint64(g.idx)) // stable across versions
	e := g.b.start()
	e.begin()
	e.s("resourceType", "Patient")
	e.s("id", g.pid)
	e.meta(version, updated, false)
	e.ar("extension")
	e.begin()
	e.s("url", registrationExt)
	e.ar("extension")
	e.begin()
	e.s("url", "registrationPeriod")
	e.period("valuePeriod", g.regStart, time.Time{})
	e.end()
	e.begin()
	e.s("url", "registrationType")
	e.ob("valueCodeableConcept")
	e.ar("coding")
	e.coding(registrationType, "R", "Regular")
	e.endArr()
	e.end()
	e.end()
	e.endArr()
	e.end()
	e.endArr()
	e.ar("identifier")
	e.begin()
	e.ar("extension")
	e.begin()
	e.s("url", nhsVerifyExt)
	e.cc("valueCodeableConcept", nhsVerifySystem, "01", "Number present and verified")
	e.end()
	e.endArr()
	e.s("system", nhsNumberSystem)
	e.s("value", g.nhs)
	e.end()
	e.endArr()
	e.bo("active", active)
	e.ar("name")
	e.humanName(g.family, g.given, g.prefix)
	e.endArr()
	e.ar("telecom")
	t := g.p.town
	e.telecom("phone", landline(r, t), "home")
	if g.age >= 12 {
		e.telecom("phone", mobile(r), "mobile")
	}
	if g.age >= 16 && chance(r, 0.6) {
		e.telecom("email", "patient"+strconv.Itoa(g.idx+1)+"@example.com", "home")
	}
	e.endArr()
	if g.female {
		e.s("gender", "female")
	} else {
		e.s("gender", "male")
	}
	e.date("birthDate", g.birth)
	if !g.death.IsZero() {
		e.dt("deceasedDateTime", g.death)
	}
	e.ar("address")
	e.address("home", strconv.Itoa(between(r, 1, 180))+" "+pick(r, streetFirst)+" "+pick(r, streetSuffix), t.Name, t.County, postcode(r, t))
	e.endArr()
	e.ar("generalPractitioner")
	e.refv(g.p.orgID)
	e.endArr()
	e.ref("managingOrganization", g.p.orgID)
	e.end()
	g.b.finish("Patient", e)
}

// newRegistrant prepares the generator for a patient who registers at the
// practice at time at, bringing their whole previous record with them.
func newRegistrant(p *practice, idx int, at time.Time, b *batch) *pgen {
	g := newPgen(p, idx, b)
	g.regStart, g.created, g.end, g.death = at, at, at, time.Time{}
	if !g.histStart.Before(at) {
		g.histStart = at.AddDate(0, -1, 0)
	}
	if g.birth.After(g.histStart) {
		g.birth = g.histStart.AddDate(0, 0, -7)
	}
	return g
}
