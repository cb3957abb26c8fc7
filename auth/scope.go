package auth

import (
	"regexp"
	"slices"
	"strings"
)

// ScopeIngest is the scope of the source system's ingest credentials: it
// lets a client whose registration has Ingest set write records and
// watermarks of its practices. It is the only scope an ingest client may
// request, and a read client may not request it.
const ScopeIngest = "dtm/ingest"

// maxScopes bounds the number of scopes in one token request.
const maxScopes = 64

var resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

// readPermissions are the SMART read permissions we grant: v1 "read" and
// the v2 subsets of "rs".
var readPermissions = []string{"read", "rs", "r", "s"}

// ValidScope reports whether scope is one this server grants: ScopeIngest,
// or a system read scope, system/<Type or *>.<read|rs|r|s>, for example
// system/*.rs, system/*.read or system/Patient.rs. Write scopes, user and
// patient scopes and v2 query-qualified scopes are not granted.
func ValidScope(scope string) bool {
	if scope == ScopeIngest {
		return true
	}
	rest, ok := strings.CutPrefix(scope, "system/")
	if !ok {
		return false
	}
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok || !slices.Contains(readPermissions, perm) {
		return false
	}
	return typ == "*" || resourceTypePattern.MatchString(typ)
}

// parseScopes splits a space-separated scope parameter, checks every scope
// and returns them without duplicates, in request order. It returns an
// invalid_scope error for an empty parameter or any scope it does not grant.
func parseScopes(param string) ([]string, error) {
	fields := strings.Fields(param)
	if len(fields) == 0 {
		return nil, badRequest(errInvalidScope, "scope is required (for example system/*.rs)")
	}
	if len(fields) > maxScopes {
		return nil, badRequest(errInvalidScope, "too many scopes")
	}
	var out []string
	for _, f := range fields {
		if !ValidScope(f) {
			return nil, badRequest(errInvalidScope, "unsupported scope %q: this server grants system/<type or *>.rs (or .read) and %s", truncate(f, 80), ScopeIngest)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// checkScopesForClient returns an invalid_scope error unless the scopes suit
// the client: ingest clients may ask only for ScopeIngest, read clients
// never for it.
func checkScopesForClient(scopes []string, ingest bool) error {
	for _, sc := range scopes {
		if ingest && sc != ScopeIngest {
			return badRequest(errInvalidScope, "ingest clients may request only %s", ScopeIngest)
		}
		if !ingest && sc == ScopeIngest {
			return badRequest(errInvalidScope, "%s is not granted to this client", ScopeIngest)
		}
	}
	return nil
}

// ScopeTypes returns the resource types the granted read scopes allow, or
// nil when a wildcard scope allows every type. Ingest scopes allow no
// types.
func ScopeTypes(scopes []string) []string {
	var types []string
	for _, sc := range scopes {
		rest, ok := strings.CutPrefix(sc, "system/")
		if !ok {
			continue
		}
		typ, _, _ := strings.Cut(rest, ".")
		if typ == "*" {
			return nil
		}
		if !slices.Contains(types, typ) {
			types = append(types, typ)
		}
	}
	if types == nil {
		return []string{}
	}
	return types
}

// truncate shortens s to at most n bytes (on a rune boundary) for messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
