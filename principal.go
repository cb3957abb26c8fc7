package dtm

import (
	"context"
	"slices"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	Client string // client id; "" when authentication is off
	// Practices the caller may read; AllPractices means every practice.
	Practices []string
	// Ingest is true for the source system's own credentials, which may
	// write records and watermarks.
	Ingest bool
	// Admin may manage practices, clients and cutover state.
	Admin bool
	// Types are the resource types the caller may read (per-type scopes
	// such as system/Patient.rs); nil means every type.
	Types []string
}

// CanReadType reports whether the principal's scopes allow reading the
// resource type.
func (p Principal) CanReadType(typ string) bool {
	return p.Types == nil || slices.Contains(p.Types, typ)
}

// AllPractices in Principal.Practices grants every practice (auth off).
const AllPractices = "*"

// CanRead reports whether the principal may read the practice.
func (p Principal) CanRead(ods string) bool {
	return slices.Contains(p.Practices, AllPractices) || slices.Contains(p.Practices, ods)
}

type principalKey struct{}

// NewContextWithPrincipal returns ctx carrying p.
func NewContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal in ctx and whether there is one.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
