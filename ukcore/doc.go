// Package ukcore validates FHIR R4 resources for a GP practice migration
// (requirement T4: check that consumed data is in the expected format).
//
// A Validator runs two layers over each resource and returns every finding
// as a Result, which renders as a FHIR R4 OperationOutcome:
//
//   - R4 structure, with Google's FHIR library (github.com/google/fhir/go
//     jsonformat with extended validation): element names and types, choice
//     types, primitive formats, required elements and cardinality, and the
//     resource types references may target (rule r4-structure).
//   - UK Core and migration rules dtm implements itself on a generic JSON
//     view: NHS numbers (format and modulus-11 check digit), ODS codes,
//     SNOMED CT concept ids (format, partition, Verhoeff check digit), dm+d
//     codes and systems, UCUM units, the elements a migrated record needs,
//     dates that must not lie in the future, references that must resolve,
//     the practice a patient belongs to, and the R4 invariants (FHIRPath
//     constraints) that matter for a GP record, which the library does not
//     evaluate.
//
// An error or fatal finding quarantines the resource (kept with its
// OperationOutcome, never dropped); a warning does not. Findings never carry
// patient data: messages name the rule, not the value. docs/VALIDATION.md
// lists every rule.
//
// The package also holds the NHS number and Verhoeff check-digit functions
// the synthetic data generator uses.
package ukcore
