// Package source is the source role's service layer: ingest of a live
// source system's records into the journal (files and HTTP push), the source
// system's completeness watermark, and practice freshness (S3, S4).
package source
