package fhir

import "bytes"

// Header is what dtm needs to know about a resource to store it.
type Header struct {
	ResourceType string // e.g. "Patient"
	ID           string // logical id, valid per CheckID
}

// ParseHeader validates that resource is exactly one JSON object (valid
// UTF-8, no duplicate top-level keys, nesting within limits) with a
// resourceType and an id that pass CheckType and CheckID, and returns them.
// Errors match ErrInvalid and name the problem ("missing id", "id is not a
// string", "invalid id \"a/b\": must match [A-Za-z0-9-.]{1,64}") without
// echoing any value other than a truncated resourceType or id.
func ParseHeader(resource []byte) (Header, error) {
	h, hasID, err := parseHeader(resource)
	if err != nil {
		return Header{}, err
	}
	if !hasID {
		return Header{}, invalidf("missing id")
	}
	return h, nil
}

// parseHeader is ParseHeader without requiring an id (a Bundle entry to be
// created may have none); hasID reports whether there was one.
func parseHeader(resource []byte) (h Header, hasID bool, err error) {
	if b := bytes.TrimLeft(resource, " \t\r\n"); len(b) > 0 && b[0] != '{' {
		return Header{}, false, invalidf("not a JSON object")
	}
	var hs headerScan
	if err := walkObject(resource, hs.member); err != nil {
		return Header{}, false, err
	}
	return hs.result()
}

// headerScan collects a resource's header from its top-level members, as
// a walker visits them.
type headerScan struct {
	rt, id []byte
	keys   keySet
}

// member is a memberFunc: it notes resourceType and id and rejects
// duplicate keys.
func (hs *headerScan) member(key []byte, escaped bool, value []byte) error {
	k := key
	if escaped {
		k = []byte(decodeKey(key, true))
	}
	if hs.keys.add(k) {
		return invalidf("duplicate key %s", quoteID(string(k)))
	}
	switch string(k) {
	case "resourceType":
		hs.rt = value
	case "id":
		hs.id = value
	}
	return nil
}

// result checks and returns what member collected.
func (hs *headerScan) result() (h Header, hasID bool, err error) {
	if hs.rt == nil {
		return Header{}, false, invalidf("missing resourceType")
	}
	if !isString(hs.rt) {
		return Header{}, false, invalidf("resourceType is not a string")
	}
	h.ResourceType = stringValue(hs.rt)
	if err := CheckType(h.ResourceType); err != nil {
		return Header{}, false, err
	}
	if hs.id == nil {
		return h, false, nil
	}
	if !isString(hs.id) {
		return Header{}, false, invalidf("id is not a string")
	}
	h.ID = stringValue(hs.id)
	if err := CheckID(h.ID); err != nil {
		return Header{}, false, err
	}
	return h, true, nil
}

// CheckID returns nil when id is a valid FHIR logical id,
// [A-Za-z0-9\-\.]{1,64}, that is also safe as a URL path segment: "." and
// any id containing ".." are rejected. The error matches ErrInvalid.
func CheckID(id string) error {
	if id == "" {
		return invalidf("invalid id: empty")
	}
	if len(id) > 64 || !idChars(id) {
		return invalidf("invalid id %s: must match [A-Za-z0-9-.]{1,64}", quoteID(id))
	}
	if id == "." || containsDotDot(id) {
		return invalidf("invalid id %s: must not be \".\" or contain \"..\"", quoteID(id))
	}
	return nil
}

func idChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func containsDotDot(id string) bool {
	for i := 1; i < len(id); i++ {
		if id[i] == '.' && id[i-1] == '.' {
			return true
		}
	}
	return false
}

// CheckType returns nil when t is a plausible FHIR resource type name,
// [A-Z][A-Za-z]{1,63}. It does not check t against the list of R4 types
// (validation does). The error matches ErrInvalid.
func CheckType(t string) error {
	if t == "" {
		return invalidf("invalid resourceType: empty")
	}
	ok := len(t) >= 2 && len(t) <= 64 && t[0] >= 'A' && t[0] <= 'Z'
	for i := 1; ok && i < len(t); i++ {
		c := t[i]
		ok = c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
	}
	if !ok {
		return invalidf("invalid resourceType %s: must match [A-Z][A-Za-z]{1,63}", quoteID(t))
	}
	return nil
}

// keySet detects duplicate keys without allocating for the usual handful of
// top-level keys, falling back to a map for hostile objects with many.
type keySet struct {
	small [32][]byte
	n     int
	big   map[string]struct{}
}

// add records k and reports whether it was already there.
func (s *keySet) add(k []byte) bool {
	if s.big != nil {
		if _, dup := s.big[string(k)]; dup {
			return true
		}
		s.big[string(k)] = struct{}{}
		return false
	}
	for _, o := range s.small[:s.n] {
		if bytes.Equal(o, k) {
			return true
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return false
	}
	s.big = make(map[string]struct{}, 2*len(s.small))
	for _, o := range s.small {
		s.big[string(o)] = struct{}{}
	}
	s.big[string(k)] = struct{}{}
	return false
}
