package ukcore

import (
	"os"
	"strings"
	"testing"
)

// TestValidationDoc checks that docs/VALIDATION.md describes every rule.
func TestValidationDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/VALIDATION.md")
	if err != nil {
		t.Fatalf("read rule documentation: %v", err)
	}
	for _, rule := range allRules {
		if !strings.Contains(string(b), "`"+rule+"`") {
			t.Errorf("docs/VALIDATION.md does not describe rule %s", rule)
		}
	}
}
