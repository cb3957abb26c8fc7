package ukcore

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testUKCoreExamples checks the official UK Core
// examples: R4 structure passes on all but the two known-invalid ones, and
// the UK Core rules report only what is really in the data.
func testUKCoreExamples(t *testing.T) {
	examples := ukcoreExamples(t)
	if len(examples) != 215 {
		t.Fatalf("read %d UK Core examples, want 215", len(examples))
	}
	v := MustValidator(t, Options{Now: fixedNow})
	var failed []string
	byRule := map[string]int{}
	for _, ex := range examples {
		var head struct{ ResourceType, ID string }
		if err := json.Unmarshal(ex, &head); err != nil {
			t.Fatal(err)
		}
		structural := false
		for _, f := range v.Validate(ex).Findings {
			byRule[string(f.Severity)+" "+f.Rule]++
			structural = structural || f.Rule == RuleStructure
		}
		if structural {
			failed = append(failed, head.ResourceType+"/"+head.ID)
		}
	}
	t.Run("Structure", func(t *testing.T) {
		want := []string{
			"Condition/Extension-UKCore-ConditionEpisode-Example", // extension with several value[x]
			"Bundle/UKCore-Bundle-Sn-NoAllergyData-Example",       // link.url not a URI
		}
		if diff := cmp.Diff(want, failed); diff != "" {
			t.Errorf("structurally invalid examples (-want +got):\n%s", diff)
		}
		t.Logf("%d pass structure, %d fail", len(examples)-len(failed), len(failed))
	})
	t.Run("Rules", func(t *testing.T) {
		want := map[string]int{
			"error " + RuleStructure: 2,
			// Extension examples are Patient fragments with neither identifier
			// nor name: unidentifiable as migrated records.
			"error " + RuleRequired: 17,
			// UKCore-Patient-BabyPatient-Example's NHS number fails modulus 11.
			"error " + RuleNHSNumberCheckDigit: 1,
			"warning " + RuleNHSNumberMissing:  22,
			"warning " + RuleSubjectMissing:    8,
			// Two Medication examples are coded with SNOMED CT only.
			"warning " + RuleDMDSystem: 2,
		}
		if diff := cmp.Diff(want, byRule); diff != "" {
			t.Errorf("findings by rule (-want +got):\n%s", diff)
		}
	})
}

// testSynthea validates every entry of the Synthea
// transaction bundles: US-shaped data must give UK Core findings (no NHS
// numbers, RxNorm medications), never a crash or a structural failure.
func testSynthea(t *testing.T) {
	bundles := syntheaBundles(t)
	v := MustValidator(t, Options{Now: fixedNow})
	byRule := map[string]int{}
	resources := 0
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		for _, res := range bundles[name] {
			resources++
			for _, f := range v.Validate(res).Findings {
				byRule[string(f.Severity)+" "+f.Rule]++
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byRule)) {
		t.Logf("%6d %s", byRule[k], k)
	}
	if resources != 6732 {
		t.Errorf("validated %d resources, want 6732", resources)
	}
	want := map[string]int{
		"warning " + RuleNHSNumberMissing: 20,  // every patient
		"warning " + RuleDMDSystem:        280, // RxNorm-coded MedicationRequests
	}
	if diff := cmp.Diff(want, byRule); diff != "" {
		t.Errorf("findings by rule (-want +got):\n%s", diff)
	}
}
