// Package target is the target role of dtm: it pulls a practice's records
// from a source DTM over FHIR Bulk Data, validates them, loads them into the
// target store and records what it did (requirements T1 to T4, invariants 4
// to 6 of DESIGN.md).
//
// The pieces, each in its own file:
//
//   - Client (client.go, poll.go, download.go, binary.go): a Bulk Data client
//     that takes ctx first everywhere, always closes response bodies,
//     honours Retry-After, retries transient failures with capped
//     exponential backoff, downloads files in parallel into a work directory
//     (verified by line count and SHA-256) and fetches attachments with
//     Range resumption.
//   - Puller (pull.go, load.go, validate.go, attachments.go, sla.go): one
//     crash-safe pull. The checkpoint (_since of the next export) advances
//     only after every file of the export is durably applied; a restarted
//     pull resumes the same export and skips files already verified.
//   - Server (serve.go): a read-only FHIR API over the target store.
package target
