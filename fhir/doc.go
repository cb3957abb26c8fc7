// Package fhir is dtm's FHIR R4 JSON plumbing: a small allocation-light
// scanner over raw JSON, the canonical content hash, meta stamping, resource
// headers and compartments, NDJSON and Bundle reading, and OperationOutcome.
// It works on bytes and keeps every value exactly as written (number
// literals, unknown elements, extensions), because the migration must carry
// records unchanged (invariant 6).
package fhir
