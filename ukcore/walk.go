package ukcore

import (
	"strconv"
	"strings"
	"time"
)

// seg is one step of an element path: a JSON name, and an array index or -1.
type seg struct {
	name string
	idx  int
}

// resourceCtx describes the resource whose elements are being walked.
type resourceCtx struct {
	typ string
	// contained holds the ids of the contained resources of the enclosing
	// container resource, for "#id" references; nil when it has none.
	contained map[string]bool
}

// walker visits a decoded resource once, applying the datatype rules to
// every element and the resource rules to every resource, including
// contained resources and Bundle entries. It is used by one goroutine for
// one Validate call.
type walker struct {
	v        *Validator
	now      time.Time
	findings []Finding
	path     []seg
	res      resourceCtx
	// local holds "Type/id" of the resources in the input itself (the root
	// and, for a Bundle, its entries), which resolve without Options.Resolve.
	local map[string]bool
}

// walkRoot validates the top-level resource obj.
func (w *walker) walkRoot(obj map[string]any) {
	rt, _ := obj["resourceType"].(string)
	if !resourceTypeName(rt) {
		// The structural validator reports the missing or odd type.
		rt = "Resource"
	}
	w.path = append(w.path[:0], seg{name: rt, idx: -1})
	if w.v.resolve != nil {
		w.local = localResources(rt, obj)
	}
	w.res = resourceCtx{typ: rt, contained: containedIDs(obj)}
	w.resource(obj)
	w.object(obj)
}

// object applies the datatype rules to obj and walks its children.
func (w *walker) object(obj map[string]any) {
	w.datatype(obj)
	for k, val := range obj {
		switch x := val.(type) {
		case map[string]any:
			w.path = append(w.path, seg{name: k, idx: -1})
			w.child(k, x)
			w.path = w.path[:len(w.path)-1]
		case []any:
			for i, e := range x {
				if m, ok := e.(map[string]any); ok {
					w.path = append(w.path, seg{name: k, idx: i})
					w.child(k, m)
					w.path = w.path[:len(w.path)-1]
				}
			}
		}
	}
}

// child walks the object m found under the JSON name key. In FHIR JSON an
// object with a resourceType is a resource (contained, a Bundle entry, a
// Parameters value, a response outcome); it gets the resource rules too.
func (w *walker) child(key string, m map[string]any) {
	rt, ok := m["resourceType"].(string)
	if !ok {
		w.object(m)
		return
	}
	saved := w.res
	if key == "contained" {
		// "#id" inside a contained resource refers to its container's
		// other contained resources.
		w.res = resourceCtx{typ: rt, contained: saved.contained}
	} else {
		w.res = resourceCtx{typ: rt, contained: containedIDs(m)}
	}
	w.resource(m)
	w.object(m)
	w.res = saved
}

// add records a finding at the element elem (a relative path such as
// "identifier[0].value", or "" for the current element).
func (w *walker) add(sev Severity, code, rule, elem, msg string) {
	w.findings = append(w.findings, Finding{
		Severity: sev, Code: code, Rule: rule, Expression: w.expr(elem), Message: msg,
	})
}

// expr renders the current path, followed by elem when it is not empty.
// A step whose JSON name is not a FHIR element name is written "*": in
// malformed input a key may be anything, even patient data.
func (w *walker) expr(elem string) string {
	var b strings.Builder
	for i, s := range w.path {
		switch {
		case i == 0:
			b.WriteString(s.name) // checked by walkRoot
		case elementName(s.name):
			b.WriteByte('.')
			b.WriteString(s.name)
		default:
			b.WriteString(".*")
		}
		if s.idx >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
		}
	}
	if elem != "" {
		b.WriteByte('.')
		b.WriteString(elem)
	}
	return b.String()
}

// containedIDs returns the ids of the contained resources of obj, or nil.
func containedIDs(obj map[string]any) map[string]bool {
	list, _ := obj["contained"].([]any)
	if len(list) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(list))
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				ids[id] = true
			}
		}
	}
	return ids
}

// indexed returns name[i] as a path element.
func indexed(name string, i int) string {
	return name + "[" + strconv.Itoa(i) + "]"
}
