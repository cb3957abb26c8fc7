// Package web is the dashboard that "dtm source serve" and "dtm target
// serve" show at "/": per practice, freshness against the 6 h and 12 h
// lines, changes per day, pulls and their consumption times, validation
// findings, open data issues, reconciliation and the cutover countdown.
//
// The page is rendered entirely on the server with html/template (charts
// are inline SVG with a data table alternative), so it works without
// JavaScript; a small script swaps in the updates that "/events", a
// server-sent events stream, pushes every few seconds and whenever
// Handler.Notify is called.
//
// The package knows nothing of stores: a Provider fills a Dashboard of
// plain values (aggregates and resource ids, never patient data) and
// cmd/dtm wires providers for the two roles.
//
// Access control: a Handler trusts the dtm.Principal in the request
// context. When there is one, only the practices it may read
// (Principal.CanRead) are shown; when there is none, every practice the
// Provider returns is shown. Deciding who may reach the dashboard at all
// is the job of the authentication middleware in front of it, as for the
// API.
package web
