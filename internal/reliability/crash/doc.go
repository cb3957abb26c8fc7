// Package crash holds dtm's crash, restart, upgrade and storage-fault tests
// (issue #10, items 1, 3 and 6). It has no code of its own: its tests kill
// source processes with SIGKILL during ingest and export, restart them, open
// stores built at older schema versions, and fill or write-protect the store,
// and then check that nothing committed was lost, nothing was half-applied
// and nothing was duplicated.
//
// The tests run in a fast mode by default (a few kills per case, for CI) and
// in a long mode, with many trials, when DTM_RELIABILITY_LONG=1. Each test
// logs its trial and kill counts; docs/RELIABILITY.md records them.
package crash
