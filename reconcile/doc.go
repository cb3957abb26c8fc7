// Package reconcile computes and compares practice digests (dtm.Digest):
// the digest tree both roles build over a snapshot of their journal, so
// that the target can prove it holds exactly what the source holds and,
// when it does not, name the resources that differ (invariant 5, A3).
//
// It is a library over the dtm domain, like fhir: it imports only the
// standard library and package dtm, and both the source (which serves
// digests) and the target (which compares them) use it, so the two sides
// can never compute a digest differently. docs/RECONCILIATION.md describes
// the digest and the protocol.
package reconcile
