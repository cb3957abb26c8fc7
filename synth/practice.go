package synth

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// DefaultBase is the base time used when Options.Base is zero: every
// generated record is dated before it.
var DefaultBase = time.Date(2026, time.January, 5, 0, 0, 0, 0, time.UTC)

// Options says which practice to generate.
type Options struct {
	Practice string    // ODS code of the practice, also the Organization id suffix
	Patients int       // number of registered patients, at least 1
	Seed     uint64    // random seed: same seed, same bytes
	Base     time.Time // records are dated before Base; zero means DefaultBase
	Workers  int       // patients generated in parallel; 0 means GOMAXPROCS
}

func (o Options) base() time.Time {
	if o.Base.IsZero() {
		return DefaultBase
	}
	return o.Base.UTC().Truncate(time.Second)
}

func (o Options) validate() error {
	if o.Practice == "" || len(o.Practice) > 10 || !idSafe(o.Practice) {
		return fmt.Errorf("invalid practice code %q", o.Practice)
	}
	if o.Patients < 1 {
		return errors.New("patients must be at least 1")
	}
	return nil
}

// idSafe reports whether s uses only characters allowed in a FHIR id.
func idSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// staff is a member of the practice team.
type staff struct {
	PractID, RoleID, SchedID string
	Given, Family, Prefix    string
	Role                     concept
	Reg                      string // GMC, NMC or GPhC-like number
	GMP                      string // prescriber code, GPs only
}

// practice is what every patient generator needs to know about the practice:
// ids of the shared resources and the base time. It is read-only once built.
type practice struct {
	opts        Options
	base        time.Time
	ods         string
	name        string
	orgID       string // "Organization/org-ODS"
	hospitalID  string // "Organization/org-hosp-ODS"
	locationRef string // "Location/loc-ODS"
	town        town
	gps, nurses []staff
	pharmacist  staff
	team        []staff // all staff, gps first
}

// newPractice derives the practice's shared details from the options.
func newPractice(o Options) *practice {
	r := newRand(o.Seed, streamPractice, 0)
	p := &practice{opts: o, base: o.base(), ods: o.Practice}
	p.town = pick(r, towns)
	p.name = p.town.Name + " " + pick(r, []string{"Medical Practice", "Health Centre", "Surgery", "Family Practice"}) + " (synthetic)"
	p.orgID = "Organization/org-" + o.Practice
	p.hospitalID = "Organization/org-hosp-" + o.Practice
	p.locationRef = "Location/loc-" + o.Practice
	nGP := max(2, o.Patients/1800)
	nNurse := max(1, o.Patients/3000)
	for i := range nGP {
		p.gps = append(p.gps, newStaff(r, o.Practice, "gp", i, roleGP))
	}
	for i := range nNurse {
		p.nurses = append(p.nurses, newStaff(r, o.Practice, "rn", i, roleNurse))
	}
	p.pharmacist = newStaff(r, o.Practice, "ph", 0, rolePharm)
	p.team = append(append(append(p.team, p.gps...), p.nurses...), p.pharmacist)
	return p
}

func newStaff(r *rand.Rand, ods, kind string, i int, role concept) staff {
	suffix := ods + "-" + kind + strconv.Itoa(i+1)
	s := staff{
		PractID: "Practitioner/prac-" + suffix,
		RoleID:  "PractitionerRole/role-" + suffix,
		SchedID: "Schedule/sched-" + suffix,
		Family:  pick(r, familyNames),
		Role:    role,
	}
	if chance(r, 0.5) {
		s.Given, s.Prefix = pick(r, givenFemale), "Ms"
	} else {
		s.Given, s.Prefix = pick(r, givenMale), "Mr"
	}
	switch kind {
	case "gp":
		s.Prefix = "Dr"
		s.Reg = strconv.Itoa(between(r, 3000000, 7999999))
		s.GMP = "G" + strconv.Itoa(between(r, 8000000, 8999999))
	case "rn":
		s.Reg = strconv.Itoa(between(r, 70, 99)) + string(rune('A'+r.IntN(26))) + strconv.Itoa(between(r, 1000, 9999)) + "E"
	default:
		s.Reg = strconv.Itoa(between(r, 2000000, 2099999))
	}
	return s
}

// idOf returns the id part of a "Type/id" reference.
func idOf(ref string) string {
	for i := 0; i < len(ref); i++ {
		if ref[i] == '/' {
			return ref[i+1:]
		}
	}
	return ref
}

// meta writes the meta element: version, last update and, for sensitive
// records, the restricted confidentiality label.
func (e *enc) meta(version int, updated time.Time, sensitive bool) {
	e.ob("meta")
	e.s("versionId", strconv.Itoa(version))
	e.dt("lastUpdated", updated)
	if sensitive {
		e.ar("security")
		e.coding(confidentiality, "R", "restricted")
		e.endArr()
	}
	e.end()
}

// header opens a resource and writes its type, id and meta at version 1.
func (e *enc) header(typ, id string, updated time.Time, sensitive bool) {
	e.headerV(typ, id, 1, updated, sensitive)
}

// headerV opens a resource and writes its type, id and meta.
func (e *enc) headerV(typ, id string, version int, updated time.Time, sensitive bool) {
	e.begin()
	e.s("resourceType", typ)
	e.s("id", id)
	e.meta(version, updated, sensitive)
}

// humanName writes a single official HumanName in value position.
func (e *enc) humanName(family, given, prefix string) {
	e.begin()
	e.s("use", "official")
	e.s("family", family)
	e.ar("given")
	e.sv(given)
	e.endArr()
	if prefix != "" {
		e.ar("prefix")
		e.sv(prefix)
		e.endArr()
	}
	e.end()
}

// address writes one Address in value position.
func (e *enc) address(use, line, city, district, postcode string) {
	e.begin()
	e.s("use", use)
	e.ar("line")
	e.sv(line)
	e.endArr()
	e.s("city", city)
	e.s("district", district)
	e.s("postalCode", postcode)
	e.s("country", "GB")
	e.end()
}

// telecom writes one ContactPoint in value position.
func (e *enc) telecom(system, value, use string) {
	e.begin()
	e.s("system", system)
	e.s("value", value)
	e.s("use", use)
	e.end()
}

// emitPractice writes the practice-level resources: the practice and the
// hospital Organizations, the Location, and each team member's
// Practitioner, PractitionerRole and Schedule.
func (p *practice) emitPractice(b *batch) {
	r := newRand(p.opts.Seed, streamPractice, 1)
	t := p.base.AddDate(-1, 0, 0)
	p.org(b, idOf(p.orgID), p.name, p.ods, r)
	p.org(b, idOf(p.hospitalID), p.town.Name+" Teaching Hospitals NHS Trust (synthetic)", "R"+p.ods[len(p.ods)-2:]+"S", r)
	e := b.start()
	e.header("Location", idOf(p.locationRef), t, false)
	e.s("status", "active")
	e.s("name", p.name)
	e.s("mode", "instance")
	e.k("address")
	e.address("work", "1 "+pick(r, streetFirst)+" "+pick(r, streetSuffix), p.town.Name, p.town.County, postcode(r, p.town))
	e.ref("managingOrganization", p.orgID)
	e.end()
	b.finish("Location", e)
	for _, s := range p.team {
		p.staffResources(b, s, t)
	}
}

func (p *practice) org(b *batch, id, name, ods string, r *rand.Rand) {
	e := b.start()
	e.header("Organization", id, p.base.AddDate(-1, 0, 0), false)
	e.ar("identifier")
	e.begin()
	e.s("system", odsSystem)
	e.s("value", ods)
	e.end()
	e.endArr()
	e.bo("active", true)
	e.s("name", name)
	e.ar("telecom")
	e.telecom("phone", landline(r, p.town), "work")
	e.endArr()
	e.ar("address")
	e.address("work", strconv.Itoa(between(r, 1, 200))+" "+pick(r, streetFirst)+" "+pick(r, streetSuffix), p.town.Name, p.town.County, postcode(r, p.town))
	e.endArr()
	e.end()
	b.finish("Organization", e)
}

func (p *practice) staffResources(b *batch, s staff, t time.Time) {
	e := b.start()
	e.header("Practitioner", idOf(s.PractID), t, false)
	e.ar("identifier")
	switch s.Role {
	case roleGP:
		e.begin()
		e.s("system", gmcSystem)
		e.s("value", s.Reg)
		e.end()
		e.begin()
		e.s("system", gmpSystem)
		e.s("value", s.GMP)
		e.end()
	case roleNurse:
		e.begin()
		e.s("system", nmcSystem)
		e.s("value", s.Reg)
		e.end()
	default:
		e.begin()
		e.s("system", "https://fhir.hl7.org.uk/Id/gphc-number")
		e.s("value", s.Reg)
		e.end()
	}
	e.endArr()
	e.bo("active", true)
	e.ar("name")
	e.humanName(s.Family, s.Given, s.Prefix)
	e.endArr()
	e.end()
	b.finish("Practitioner", e)

	e = b.start()
	e.header("PractitionerRole", idOf(s.RoleID), t, false)
	e.bo("active", true)
	e.ref("practitioner", s.PractID)
	e.ref("organization", p.orgID)
	e.ar("code")
	e.ccv(snomedSystem, s.Role.Code, s.Role.Display)
	e.endArr()
	e.ar("location")
	e.refv(p.locationRef)
	e.endArr()
	e.end()
	b.finish("PractitionerRole", e)

	e = b.start()
	e.header("Schedule", idOf(s.SchedID), t, false)
	e.bo("active", true)
	e.ar("serviceCategory")
	e.ccv(snomedSystem, gpService.Code, gpService.Display)
	e.endArr()
	e.ar("actor")
	e.refv(s.RoleID)
	e.refv(p.locationRef)
	e.endArr()
	e.period("planningHorizon", t, p.base.AddDate(1, 0, 0))
	e.end()
	b.finish("Schedule", e)
}

// postcode returns a plausible postcode in one of the town's districts.
func postcode(r *rand.Rand, t town) string {
	b := make([]byte, 0, 8)
	b = append(b, pick(r, t.Districts)...)
	b = append(b, ' ', byte('0'+r.IntN(10)), inwardLetters[r.IntN(len(inwardLetters))], inwardLetters[r.IntN(len(inwardLetters))])
	return string(b)
}

// landline returns a number from Ofcom's range reserved for drama in the
// town's area code (for example 0113 496 0xxx).
func landline(r *rand.Rand, t town) string {
	return t.Phone + " 0" + strconv.Itoa(1000 + r.IntN(1000))[1:]
}

// mobile returns a number from Ofcom's mobile drama range 07700 900xxx.
func mobile(r *rand.Rand) string {
	return "07700 900" + strconv.Itoa(1000 + r.IntN(1000))[1:]
}
