// Package faultproxy is an in-process HTTP proxy that injects network
// faults between a client and a real server: connection resets, truncated
// bodies, stalls, slow bandwidth, error statuses (with and without
// Retry-After) and wrong Content-Length headers. Faults are chosen by rules
// (a path pattern, the nth matching request) and, for the requests no rule
// claims, by a seeded random generator, so that a failing run can be
// replayed from its seed. Every injected fault is recorded, so that a test
// can assert that the faults it meant to inject really happened.
//
// It is test machinery: it speaks HTTP/1.1 on loopback and holds a faulted
// response body in memory (up to Options.MaxBuffer).
package faultproxy

import (
	"fmt"
	"net/http"
	"regexp"
	"time"
)

// Kind names a fault.
type Kind string

// The faults a Proxy injects.
const (
	// Reset closes the client's connection with a TCP RST: before any
	// response when Fault.At is 0 (after the request reached the server
	// when Fault.Forward is set), else after a fraction At of the body.
	Reset Kind = "reset"
	// Truncate sends the response headers (without Content-Length) and the
	// first fraction At of the body, then closes the connection.
	Truncate Kind = "truncate"
	// Stall sends nothing for Fault.Delay (or until the client gives up)
	// after the first fraction At of the body (0: before the headers), then
	// closes the connection.
	Stall Kind = "stall"
	// Slow delivers the body at Fault.BytesPerSec.
	Slow Kind = "slow"
	// Status answers Fault.Code (500, 502, 503, 429, ...) with
	// Fault.RetryAfter as Retry-After when not empty. The request reaches
	// the server only when Fault.Forward is set.
	Status Kind = "status"
	// ShortLength declares a Content-Length of a fraction At of the body
	// and sends that much: the client sees a clean, short body.
	ShortLength Kind = "short-length"
	// LongLength declares a Content-Length larger than the body, sends the
	// body and closes the connection.
	LongLength Kind = "long-length"
)

// Fault is one fault to inject into one response.
type Fault struct {
	Kind Kind
	// Code is the status of a Status fault.
	Code int
	// RetryAfter is the Retry-After header of a Status fault ("" for none).
	RetryAfter string
	// At is the fraction of the body, in [0, 1), sent before a Reset,
	// Truncate, Stall or ShortLength fault strikes.
	At float64
	// Delay is how long a Stall lasts (1 minute when 0); the proxy stops
	// stalling early when the client goes away.
	Delay time.Duration
	// BytesPerSec is a Slow fault's bandwidth (16 KiB/s when 0).
	BytesPerSec int
	// Forward sends the request to the server before a Reset (at 0) or a
	// Status fault, so that the server acts on a request whose response is
	// lost.
	Forward bool
}

// Label names the fault for counting: its kind, with the status code and
// whether Retry-After was sent for Status faults (e.g. "status-503-retry-after").
func (f Fault) Label() string {
	if f.Kind != Status {
		return string(f.Kind)
	}
	s := fmt.Sprintf("status-%d", f.Code)
	if f.RetryAfter != "" {
		s += "-retry-after"
	}
	return s
}

// String describes the fault.
func (f Fault) String() string {
	switch f.Kind {
	case Status:
		return fmt.Sprintf("%s (Retry-After %q, forwarded %v)", f.Label(), f.RetryAfter, f.Forward)
	case Slow:
		return fmt.Sprintf("slow %d B/s", f.BytesPerSec)
	case Stall:
		return fmt.Sprintf("stall %s at %.2f", f.Delay, f.At)
	}
	return fmt.Sprintf("%s at %.2f", f.Kind, f.At)
}

// bodyFault reports whether the fault needs the server's response body.
func (f Fault) bodyFault() bool {
	switch f.Kind {
	case Truncate, Slow, ShortLength, LongLength:
		return true
	case Reset, Stall:
		return f.At > 0
	}
	return false
}

// Rule injects a fault into matching requests.
type Rule struct {
	// Method matches the request method; "" matches any.
	Method string
	// Path matches the request path; nil matches any.
	Path *regexp.Regexp
	// Nth, when > 0, makes the rule fire only on the nth request it
	// matches (1-based); 0 fires on every match.
	Nth int
	// Times, when > 0, bounds how many times the rule fires.
	Times int
	// Fault is what is injected.
	Fault Fault

	matched, fired int
}

// match reports whether r matches the rule's method and path.
func (rl *Rule) match(r *http.Request) bool {
	return (rl.Method == "" || rl.Method == r.Method) && (rl.Path == nil || rl.Path.MatchString(r.URL.Path))
}

// Random configures random faults for requests no rule claims.
type Random struct {
	// Rate is the probability, in [0, 1], that a request gets a fault.
	Rate float64
	// Faults are the candidates, drawn uniformly; each drawn fault's At is
	// replaced by a random fraction when it is a body fault or a Reset.
	Faults []Fault
	// Match, when set, limits random faults to the requests it accepts.
	Match func(r *http.Request) bool
}

// Injection records one injected fault.
type Injection struct {
	N      int64 // the request's number, from 1
	Method string
	Path   string
	Fault  Fault
	Rule   bool   // chosen by a rule rather than at random
	Note   string // what actually happened, when it differs (e.g. body too large)
	At     time.Time
}
