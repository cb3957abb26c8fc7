package ukcore

import "strings"

// reference checks the Reference.reference string ref of the current
// element: a local "#id" must name a contained resource (ref-1), and, when
// Options.Resolve is set, a relative "Type/id" must resolve. Absolute URLs,
// urn:uuid/urn:oid references and conditional references are not checked.
func (w *walker) reference(ref string) {
	if strings.HasPrefix(ref, "#") {
		if id := ref[1:]; id != "" && !w.res.contained[id] {
			w.add(SeverityError, "invariant", RuleRef1, "reference",
				"ref-1: local reference does not name a contained resource")
		}
		return
	}
	if w.v.resolve == nil {
		return
	}
	key, ok := relativeReference(ref)
	if !ok || w.local[key] {
		return
	}
	if !w.v.resolve(key) {
		w.add(SeverityError, "not-found", RuleReferenceUnresolved, "reference",
			"referenced resource is in neither the delta nor the target store")
	}
}

// relativeReference returns "Type/id" for a relative reference
// "Type/id" or "Type/id/_history/vid", and false for anything else.
func relativeReference(ref string) (string, bool) {
	typ, rest, ok := strings.Cut(ref, "/")
	if !ok || !resourceTypeName(typ) {
		return "", false
	}
	id, hist, versioned := strings.Cut(rest, "/")
	if !validID(id) {
		return "", false
	}
	if versioned {
		vid, ok := strings.CutPrefix(hist, "_history/")
		if !ok || !validID(vid) {
			return "", false
		}
	}
	return typ + "/" + id, true
}

// resourceTypeName reports whether s looks like a resource type name: an
// upper-case ASCII letter followed by letters.
func resourceTypeName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// validID reports whether s is a FHIR id: 1 to 64 of A-Z a-z 0-9 - and '.'.
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// localResources returns "Type/id" of the resource obj of type rt and, for
// a Bundle, of its entries (by resource and by a fullUrl ending in
// Type/id), which references in the same input may name.
func localResources(rt string, obj map[string]any) map[string]bool {
	local := map[string]bool{}
	if id, ok := obj["id"].(string); ok {
		local[rt+"/"+id] = true
	}
	if rt != "Bundle" {
		return local
	}
	entries, _ := obj["entry"].([]any)
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		if res, ok := entry["resource"].(map[string]any); ok {
			typ, _ := res["resourceType"].(string)
			if id, ok := res["id"].(string); ok && typ != "" {
				local[typ+"/"+id] = true
			}
		}
		if full, ok := entry["fullUrl"].(string); ok {
			if i := strings.LastIndexByte(full, '/'); i > 0 {
				if j := strings.LastIndexByte(full[:i], '/'); j >= 0 {
					if key, ok := relativeReference(full[j+1:]); ok {
						local[key] = true
					}
				}
			}
		}
	}
	return local
}
