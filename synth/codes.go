package synth

// Code systems and identifier systems.
const (
	snomedSystem     = "http://snomed.info/sct"
	dmdSystem        = "https://dmd.nhs.uk"
	ucumSystem       = "http://unitsofmeasure.org"
	loincSystem      = "http://loinc.org"
	odsSystem        = "https://fhir.nhs.uk/Id/ods-organization-code"
	nhsNumberSystem  = "https://fhir.nhs.uk/Id/nhs-number"
	gmcSystem        = "https://fhir.hl7.org.uk/Id/gmc-number"
	gmpSystem        = "https://fhir.hl7.org.uk/Id/gmp-number"
	nmcSystem        = "https://fhir.hl7.org.uk/Id/nmc-number"
	confidentiality  = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	actCodeSystem    = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	nhsVerifyExt     = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
	nhsVerifySystem  = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
	registrationExt  = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-RegistrationDetails-1"
	registrationType = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-RegistrationType-1"
	condClinical     = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	condVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	condCategory     = "http://terminology.hl7.org/CodeSystem/condition-category"
	obsCategory      = "http://terminology.hl7.org/CodeSystem/observation-category"
	allergyClinical  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	allergyVerify    = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	auditTypeSystem  = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	auditSubtype     = "http://hl7.org/fhir/restful-interaction"
	provActivity     = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
	provAgentType    = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	v2Diagnostic     = "http://terminology.hl7.org/CodeSystem/v2-0074"
)

// concept is a coded term: a SNOMED CT concept or a dm+d product.
type concept struct {
	Code, Display string
}

// chronic describes a long-term condition: who gets it, how it is treated
// and what is measured at its reviews.
type chronic struct {
	concept
	MinAge     int       // youngest age at onset
	Prevalence float64   // probability for a patient at least MinAge
	Meds       []drug    // one or two of these are prescribed on repeat
	Labs       []labTest // measured at reviews
	Sensitive  bool      // recorded with confidentiality R
}

// drug is a dm+d virtual medicinal product with a typical dose and pack.
type drug struct {
	concept
	Dose string // dosage text
	Qty  string // quantity per issue
	Unit string // quantity unit (dm+d unit of measure name)
}

// labTest is a numeric observation with its UCUM unit and a plausible range.
type labTest struct {
	concept
	Unit, UCUM string
	Lo, Hi     float64
	DP         int // decimal places: the precision of the reported value
}

// Medicines: dm+d virtual medicinal products (VMPs). Codes were checked
// against published dm+d and NHS examples; several are the original
// international-edition identifiers, which dm+d keeps as the previous VMP id
// of products re-identified in 2021, as found in long-held GP records.
var (
	drugAmlodipine5   = drug{concept{"39732011000001102", "Amlodipine 5mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugAmox250       = drug{concept{"39732311000001104", "Amoxicillin 250mg capsules"}, "One capsule three times a day", "15", "capsule"}
	drugAmox500       = drug{concept{"39732411000001106", "Amoxicillin 500mg capsules"}, "One capsule three times a day for 5 days", "15", "capsule"}
	drugMetformin500  = drug{concept{"325278007", "Metformin 500mg tablets"}, "One tablet twice a day with food", "56", "tablet"}
	drugMetformin850  = drug{concept{"325279004", "Metformin 850mg tablets"}, "One tablet twice a day with food", "56", "tablet"}
	drugParacetamol   = drug{concept{"322236009", "Paracetamol 500mg tablets"}, "One or two tablets up to four times a day when required", "32", "tablet"}
	drugSimvastatin40 = drug{concept{"320000009", "Simvastatin 40mg tablets"}, "One tablet at night", "28", "tablet"}
	drugDiazepam2     = drug{concept{"321196004", "Diazepam 2mg tablets"}, "One tablet three times a day when required", "10", "tablet"}
	drugTemazepam10   = drug{concept{"321152004", "Temazepam 10mg tablets"}, "One tablet at night when required", "7", "tablet"}
	drugFurosemide20  = drug{concept{"317971007", "Furosemide 20mg tablets"}, "One tablet each morning", "28", "tablet"}
	drugFurosemide40  = drug{concept{"317972000", "Furosemide 40mg tablets"}, "One tablet each morning", "28", "tablet"}
	drugBisoprolol5   = drug{concept{"318590006", "Bisoprolol 5mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugBisoprolol10  = drug{concept{"318591005", "Bisoprolol 10mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugRamipril25    = drug{concept{"318901006", "Ramipril 2.5mg capsules"}, "One capsule once a day", "28", "capsule"}
	drugRamipril5     = drug{concept{"318902004", "Ramipril 5mg capsules"}, "One capsule once a day", "28", "capsule"}
	drugRamipril10    = drug{concept{"318906001", "Ramipril 10mg capsules"}, "One capsule once a day", "28", "capsule"}
	drugLisinopril10  = drug{concept{"318859000", "Lisinopril 10mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugLosartan50    = drug{concept{"318956006", "Losartan 50mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugSpironolact25 = drug{concept{"318056008", "Spironolactone 25mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugCandesartan8  = drug{concept{"318979007", "Candesartan 8mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugIrbesartan150 = drug{concept{"318969005", "Irbesartan 150mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugEnalapril5    = drug{concept{"318851002", "Enalapril 5mg tablets"}, "One tablet once a day", "28", "tablet"}
	drugPerindopril4  = drug{concept{"318897000", "Perindopril erbumine 4mg tablets"}, "One tablet once a day", "30", "tablet"}
	drugBumetanide1   = drug{concept{"318021009", "Bumetanide 1mg tablets"}, "One tablet each morning", "28", "tablet"}
	drugSalbutamol    = drug{concept{"39113611000001102", "Salbutamol 100micrograms/dose inhaler CFC free"}, "Two puffs up to four times a day when required", "200", "dose"}
	drugDoxycycline   = drug{concept{"41948311000001104", "Doxycycline 100mg capsules"}, "Two capsules on the first day then one capsule daily", "8", "capsule"}
	drugClarithro500  = drug{concept{"41946511000001109", "Clarithromycin 500mg tablets"}, "One tablet twice a day for 5 days", "10", "tablet"}
	drugCipro500      = drug{concept{"39687811000001107", "Ciprofloxacin 500mg tablets"}, "One tablet twice a day for 3 days", "6", "tablet"}
	drugCocodamol     = drug{concept{"322341003", "Co-codamol 30mg/500mg tablets"}, "One or two tablets up to four times a day when required", "30", "tablet"}
	drugCarvedilol    = drug{concept{"318633000", "Carvedilol 3.125mg tablets"}, "One tablet twice a day", "56", "tablet"}
)

// allDrugs lists every medicine the generator can prescribe (for tests).
var allDrugs = []drug{
	drugAmlodipine5, drugAmox250, drugAmox500, drugMetformin500, drugMetformin850,
	drugParacetamol, drugSimvastatin40, drugDiazepam2, drugTemazepam10, drugFurosemide20,
	drugFurosemide40, drugBisoprolol5, drugBisoprolol10, drugRamipril25, drugRamipril5,
	drugRamipril10, drugLisinopril10, drugLosartan50, drugSpironolact25, drugCandesartan8,
	drugIrbesartan150, drugEnalapril5, drugPerindopril4, drugBumetanide1, drugSalbutamol,
	drugDoxycycline, drugClarithro500, drugCipro500, drugCocodamol, drugCarvedilol,
}

// Vaccines: dm+d products (VMPs and AMPs) as used in UK Core examples.
var vaccines = struct{ Flu, Pneumo, Covid, CovidMRNA concept }{
	Flu:       concept{"11278411000001109", "Influenza vaccine (split virion, inactivated) suspension for injection 0.5ml pre-filled syringes (Pfizer Ltd)"},
	Pneumo:    concept{"10245211000001108", "Pneumococcal polysaccharide conjugated vaccine (adsorbed) suspension for injection 0.5ml pre-filled syringes"},
	Covid:     concept{"39116211000001106", "Generic COVID-19 Vaccine Vaxzevria (ChAdOx1 S [recombinant]) not less than 2.5x100,000,000 infectious units/0.5ml dose suspension for injection multidose vials"},
	CovidMRNA: concept{"39115611000001103", "Comirnaty COVID-19 mRNA Vaccine 30micrograms/0.3ml dose concentrate for dispersion for injection multidose vials (Pfizer Ltd)"},
}

// Numeric observations (SNOMED CT observable entities, UK edition where the
// NHS uses one).
var (
	obsWeight      = labTest{concept{"27113001", "Body weight"}, "kg", "kg", 40, 120, 1}
	obsHeight      = labTest{concept{"50373000", "Body height measure"}, "cm", "cm", 150, 195, 1}
	obsBMI         = labTest{concept{"60621009", "Body mass index"}, "kg/m2", "kg/m2", 18, 40, 1}
	obsHeartRate   = labTest{concept{"364075005", "Heart rate"}, "beats/minute", "/min", 55, 105, 0}
	obsResp        = labTest{concept{"86290005", "Respiratory rate"}, "breaths/minute", "/min", 12, 22, 0}
	obsTemp        = labTest{concept{"276885007", "Core body temperature"}, "degrees C", "Cel", 36.1, 38.9, 1}
	obsSpO2        = labTest{concept{"431314004", "Peripheral oxygen saturation"}, "%", "%", 92, 100, 0}
	obsHbA1c       = labTest{concept{"999791000000106", "Haemoglobin A1c level - International Federation of Clinical Chemistry and Laboratory Medicine standardised"}, "mmol/mol", "mmol/mol", 38, 86, 0}
	obsCholesterol = labTest{concept{"1005671000000105", "Serum cholesterol level"}, "mmol/L", "mmol/L", 3.2, 7.4, 2}
	obsGlucose     = labTest{concept{"997681000000108", "Fasting blood glucose level"}, "mmol/L", "mmol/L", 4.0, 9.5, 1}
	obsPotassium   = labTest{concept{"1000651000000109", "Serum potassium level"}, "mmol/L", "mmol/L", 3.5, 5.3, 1}
	obsAlbumin     = labTest{concept{"1000821000000103", "Serum albumin level"}, "g/L", "g/L", 32, 50, 0}
	obsCreatinine  = labTest{concept{"1000731000000107", "Serum creatinine level"}, "micromol/L", "umol/L", 55, 160, 0}
	obsEGFR        = labTest{concept{"1011481000000105", "eGFR (estimated glomerular filtration rate) using creatinine Chronic Kidney Disease Epidemiology Collaboration equation per 1.73 square metres"}, "mL/min/1.73m2", "mL/min/{1.73_m2}", 25, 95, 0}
	obsHb          = labTest{concept{"1022431000000105", "Haemoglobin estimation"}, "g/L", "g/L", 105, 170, 0}
	obsWBC         = labTest{concept{"1022541000000102", "Total white cell count"}, "10*9/L", "10*9/L", 3.5, 11.5, 1}
	obsPlatelets   = labTest{concept{"1022651000000100", "Platelet count - observation"}, "10*9/L", "10*9/L", 140, 420, 0}
	obsAlcohol     = labTest{concept{"1082631000000102", "Alcohol units consumed per day"}, "unit/day", "{unit}/d", 0, 6, 0}
)

// Blood pressure panel and components.
var (
	obsBP        = concept{"75367002", "Blood pressure"}
	obsSystolic  = concept{"72313002", "Systolic arterial pressure"}
	obsDiastolic = concept{"1091811000000102", "Diastolic arterial pressure"}
)

// Smoking status (LOINC code, SNOMED CT values).
var (
	smokingCode   = concept{"72166-2", "Tobacco smoking status"}
	smokingValues = []concept{
		{"266919005", "Never smoked tobacco"},
		{"8517006", "Ex-smoker"},
		{"77176002", "Smoker"},
	}
)

// Report panels (DiagnosticReport.code) and their result observations.
var (
	panelFBC     = concept{"26604007", "Full blood count"}
	panelHaem    = concept{"252275004", "Hematology test"}
	panelLabs    = concept{"721981007", "Diagnostic studies report"}
	fbcResults   = []labTest{obsHb, obsWBC, obsPlatelets}
	renalResults = []labTest{obsCreatinine, obsEGFR, obsPotassium, obsAlbumin}
)

// Long-term conditions with their prevalence among patients old enough.
var chronicConditions = []chronic{
	{concept{"59621000", "Essential hypertension"}, 35, 0.28, []drug{drugAmlodipine5, drugRamipril5, drugLosartan50, drugLisinopril10, drugCandesartan8, drugIrbesartan150, drugPerindopril4, drugEnalapril5}, []labTest{obsCreatinine, obsEGFR}, false},
	{concept{"44054006", "Diabetes mellitus type 2"}, 35, 0.09, []drug{drugMetformin500, drugMetformin850}, []labTest{obsHbA1c, obsGlucose}, false},
	{concept{"195967001", "Asthma"}, 3, 0.10, []drug{drugSalbutamol}, []labTest{obsSpO2}, false},
	{concept{"13645005", "Chronic obstructive lung disease"}, 50, 0.05, []drug{drugSalbutamol}, []labTest{obsSpO2}, false},
	{concept{"49436004", "Atrial fibrillation"}, 60, 0.08, []drug{drugBisoprolol5, drugBisoprolol10}, []labTest{obsHeartRate}, false},
	{concept{"55822004", "Hyperlipidemia"}, 40, 0.14, []drug{drugSimvastatin40}, []labTest{obsCholesterol}, false},
	{concept{"35489007", "Depressive disorder"}, 16, 0.11, nil, nil, true},
	{concept{"197480006", "Anxiety disorder"}, 16, 0.06, []drug{drugDiazepam2}, nil, true},
	{concept{"40930008", "Hypothyroidism"}, 30, 0.04, nil, nil, false},
	{concept{"709044004", "Chronic kidney disease"}, 60, 0.10, []drug{drugRamipril25}, []labTest{obsCreatinine, obsEGFR, obsPotassium}, false},
	{concept{"84114007", "Heart failure"}, 65, 0.05, []drug{drugFurosemide40, drugBumetanide1, drugSpironolact25, drugCarvedilol, drugRamipril10}, []labTest{obsPotassium, obsEGFR}, false},
	{concept{"239873007", "Osteoarthritis of knee"}, 50, 0.12, []drug{drugParacetamol, drugCocodamol}, nil, false},
	{concept{"64859006", "Osteoporosis"}, 60, 0.05, nil, nil, false},
	{concept{"90560007", "Gout"}, 40, 0.03, nil, nil, false},
	{concept{"7200002", "Alcoholism"}, 20, 0.015, nil, []labTest{obsAlcohol}, true},
	{concept{"86406008", "Human immunodeficiency virus infection"}, 18, 0.002, nil, nil, true},
}

// acuteProblem is a self-limiting problem seen in a consultation.
type acuteProblem struct {
	concept
	Meds []drug
}

// Acute problems seen in consultations.
var acuteProblems = []acuteProblem{
	{concept{"10509002", "Acute bronchitis"}, []drug{drugAmox500, drugDoxycycline}},
	{concept{"195662009", "Acute viral pharyngitis"}, []drug{drugParacetamol}},
	{concept{"444814009", "Viral sinusitis"}, nil},
	{concept{"65363002", "Otitis media"}, []drug{drugAmox250, drugAmox500}},
	{concept{"43878008", "Streptococcal sore throat"}, []drug{drugAmox500, drugClarithro500}},
	{concept{"68566005", "Urinary tract infectious disease"}, []drug{drugCipro500}},
	{concept{"279039007", "Low back pain"}, []drug{drugParacetamol, drugCocodamol}},
	{concept{"70704007", "Sprain of wrist"}, []drug{drugParacetamol}},
	{concept{"24079001", "Atopic dermatitis"}, nil},
	{concept{"37796009", "Migraine"}, []drug{drugParacetamol}},
	{concept{"232353008", "Perennial allergic rhinitis with seasonal variation"}, nil},
	{concept{"6142004", "Influenza"}, []drug{drugParacetamol}},
	{concept{"271737000", "Anemia"}, nil},
	{concept{"22298006", "Myocardial infarction"}, []drug{drugSimvastatin40, drugBisoprolol5}},
	{concept{"230690007", "Cerebrovascular accident"}, []drug{drugSimvastatin40}},
	{concept{"193462001", "Insomnia"}, []drug{drugTemazepam10}},
}

// Allergies: substances and findings, and reaction manifestations.
var (
	allergySubstances = []concept{
		{"372687004", "Amoxicillin"},
		{"764146007", "Penicillin"},
		{"91934008", "Allergy to nut"},
		{"232350006", "House dust mite allergy"},
		{"418689008", "Allergy to grass pollen"},
		{"425525006", "Allergy to dairy product"},
	}
	allergyNKDA    = concept{"409137002", "No known drug allergy"}
	manifestations = []concept{
		{"247472004", "Urticarial rash"},
		{"271807003", "Eruption of skin"},
		{"39579001", "Anaphylaxis"},
		{"267036007", "Dyspnea"},
	}
)

// Procedures recorded by the practice or reported back to it.
var (
	procSmear        = concept{"90226004", "Cytopathology procedure, preparation of smear, genital source"}
	procECG          = concept{"268400002", "12 lead ECG"}
	procSpirometry   = concept{"23426006", "Measurement of respiratory function"}
	procMedRec       = concept{"430193006", "Medication reconciliation"}
	procSuture       = concept{"288086009", "Suture open wound"}
	procColonoscopy  = concept{"73761001", "Colonoscopy"}
	procMammography  = concept{"71651007", "Mammography"}
	procBoneDensity  = concept{"312681000", "Bone density scan"}
	procAppendectomy = concept{"80146002", "Appendectomy"}
	hospitalProcs    = []concept{procColonoscopy, procMammography, procBoneDensity, procAppendectomy}
)

// Encounter types.
var (
	encProblem  = concept{"185347001", "Encounter for problem"}
	encCheckUp  = concept{"185349003", "Encounter for check up"}
	encHTN      = concept{"390906007", "Hypertension follow-up encounter"}
	encAsthma   = concept{"394701000", "Asthma follow-up"}
	encSymptom  = concept{"185345009", "Encounter for symptom"}
	encTypes    = []concept{encProblem, encSymptom}
	reviewTypes = []concept{encCheckUp, encHTN, encAsthma}
)

// Referral targets (ServiceRequest.code) and document types.
var (
	referralCodes = []concept{
		{"169069000", "Computed tomography of chest"},
		{"268400002", "12 lead ECG"},
		{"73761001", "Colonoscopy"},
		{"135842001", "Serum C reactive protein level"},
		{"3457005", "Patient referral"},
	}
	docDischarge = concept{"373942005", "Discharge summary"}
	docClinic    = concept{"371530004", "Clinical consultation report"}
	docCarePlan  = concept{"734163000", "Care plan"}
	docRadiology = concept{"722124004", "Radiology studies report"}
	docTypes     = []concept{docDischarge, docClinic, docCarePlan, docRadiology}
)

// Other coded elements.
var (
	roleGP        = concept{"62247001", "General practitioner"}
	roleNurse     = concept{"224535009", "Registered nurse"}
	rolePharm     = concept{"46255001", "Pharmacist"}
	routeOral     = concept{"26643006", "Oral"}
	routeIM       = concept{"78421000", "Intramuscular route"}
	siteLeftArm   = concept{"368208006", "Left upper arm structure"}
	gpService     = concept{"788007007", "General practice service"}
	listAllergies = concept{"886921000000105", "Allergies and adverse reactions"}
	listMisc      = concept{"826501000000100", "Miscellaneous record"}
	flagPeanut    = concept{"226201008", "Peanut-free diet"}
)

// allSNOMED returns every SNOMED CT concept the generator can write (for
// tests); dm+d products are in allDrugs and vaccines.
func allSNOMED() []concept {
	cs := []concept{obsBP, obsSystolic, obsDiastolic, panelFBC, panelLabs,
		allergyNKDA, procSmear, procECG, procSpirometry, procMedRec, procSuture,
		encProblem, encCheckUp, encHTN, encAsthma, encSymptom,
		docDischarge, docClinic, docCarePlan, docRadiology,
		roleGP, roleNurse, rolePharm, routeOral, routeIM, siteLeftArm, gpService,
		listAllergies, listMisc, flagPeanut}
	cs = append(cs, smokingValues...)
	cs = append(cs, allergySubstances...)
	cs = append(cs, manifestations...)
	cs = append(cs, hospitalProcs...)
	cs = append(cs, referralCodes...)
	for _, t := range []labTest{obsWeight, obsHeight, obsBMI, obsHeartRate, obsResp, obsTemp,
		obsSpO2, obsHbA1c, obsCholesterol, obsGlucose, obsPotassium, obsAlbumin,
		obsCreatinine, obsEGFR, obsHb, obsWBC, obsPlatelets, obsAlcohol} {
		cs = append(cs, t.concept)
	}
	for _, c := range chronicConditions {
		cs = append(cs, c.concept)
	}
	for _, a := range acuteProblems {
		cs = append(cs, a.concept)
	}
	return cs
}
