// Package synth generates a deterministic synthetic English GP practice as
// FHIR R4 resources shaped to UK Core, and simulates the day-to-day activity
// of that practice over virtual time.
//
// Everything is derived from a seed and a base time: the same Options always
// produce byte-identical JSON. Each patient's record is generated from its own
// random stream, derived from (seed, patient index), so patients can be built
// in parallel and streamed in order with memory that stays flat whatever the
// size of the practice.
//
// The data is clearly synthetic: names are combined at random from lists,
// NHS numbers come only from the 999 test range, telephone numbers from
// Ofcom's drama ranges, e-mail addresses from example.com, and street names
// are invented. The practice Organization's name says "(synthetic)".
package synth
