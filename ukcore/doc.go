// Package ukcore validates FHIR R4 resources for a migration: R4 structure
// with a real validator library, and the UK Core rules dtm checks (NHS number,
// ODS codes, SNOMED CT identifiers, dm+d and UCUM systems). Findings are FHIR
// OperationOutcome issues.
package ukcore
