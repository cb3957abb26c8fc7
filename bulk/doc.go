// Package bulk is the FHIR Bulk Data Access (IG v2.0.0) adapter of dtm: the
// source-side $export server that serves a practice's journal as NDJSON,
// with exact incremental semantics (invariants 1 to 3 of docs/DESIGN.md).
//
// An export is defined by (kind, practices, types, since-seq, until-seq):
// the snapshot is pinned at kick-off, planned by a worker into files that
// are sequence ranges over the journal, and each file is streamed from the
// journal on demand, so a retried download returns the same bytes and any
// replica can serve it. The server side lives in server*.go, export*.go,
// manifest.go, params.go, binary.go and capability.go.
package bulk
