package fhir

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
)

const urnUUID = "urn:uuid:"

// refTable holds, for a whole Bundle, what its urn:uuid fullUrls stand for
// and which resources its entries write. It is the only part of
// ReadBundle's memory that grows with the number of entries, so the common
// case (an id that is the fullUrl's lowercase UUID, as Synthea and dtm's
// own POST ids are) takes about 40 bytes per entry instead of ~200 for
// string keys.
type refTable struct {
	types   []string
	typeIdx map[string]uint16

	urnSame  map[[16]byte]uint16 // urn:uuid:U -> type index, when the id is U
	urnOther map[string]string   // urn:uuid fullUrl -> "Type/id" otherwise

	seenUUID  map[typedUUID]int32 // Type/U (id a lowercase UUID) -> entry index
	seenOther map[string]int32    // "Type/id" -> entry index

	pending map[string]int32 // urn:uuid references not yet defined -> first entry
}

type typedUUID struct {
	typ  uint16
	uuid [16]byte
}

func newRefTable() *refTable {
	return &refTable{
		typeIdx:   map[string]uint16{},
		urnSame:   map[[16]byte]uint16{},
		urnOther:  map[string]string{},
		seenUUID:  map[typedUUID]int32{},
		seenOther: map[string]int32{},
		pending:   map[string]int32{},
	}
}

// typeIndex interns t, reporting false when the table of types is full.
func (t *refTable) typeIndex(typ string) (uint16, bool) {
	if i, ok := t.typeIdx[typ]; ok {
		return i, true
	}
	if len(t.types) >= 1<<16 {
		return 0, false
	}
	i := uint16(len(t.types))
	t.types = append(t.types, typ)
	t.typeIdx[typ] = i
	return i, true
}

// parseUUID parses a lowercase, hyphenated UUID.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	var h [32]byte
	copy(h[0:8], s[0:8])
	copy(h[8:12], s[9:13])
	copy(h[12:16], s[14:18])
	copy(h[16:20], s[19:23])
	copy(h[20:32], s[24:36])
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return u, false
		}
	}
	_, err := hex.Decode(u[:], h[:])
	return u, err == nil
}

// addURN records that fullURL (a urn:uuid) stands for typ/id, reporting
// false when it was already defined.
func (t *refTable) addURN(fullURL, typ, id string) bool {
	if _, ok := t.lookupURN(fullURL); ok {
		return false
	}
	delete(t.pending, fullURL)
	u, isUUID := parseUUID(fullURL[len(urnUUID):])
	if isUUID && id == fullURL[len(urnUUID):] {
		if ti, ok := t.typeIndex(typ); ok {
			t.urnSame[u] = ti
			return true
		}
	}
	t.urnOther[fullURL] = typ + "/" + id
	return true
}

// lookupURN returns the "Type/id" a urn:uuid reference stands for.
func (t *refTable) lookupURN(ref string) (string, bool) {
	if r, ok := t.urnOther[ref]; ok {
		return r, true
	}
	if u, ok := parseUUID(ref[len(urnUUID):]); ok {
		if ti, ok := t.urnSame[u]; ok {
			return t.types[ti] + "/" + ref[len(urnUUID):], true
		}
	}
	return "", false
}

// appendTarget appends, as a JSON string, the "Type/id" that the urn:uuid
// reference ref stands for, reporting false when it is unknown.
func (t *refTable) appendTarget(out []byte, ref string) ([]byte, bool) {
	if r, ok := t.urnOther[ref]; ok {
		return appendString(out, r), true
	}
	if u, ok := parseUUID(ref[len(urnUUID):]); ok {
		if ti, ok := t.urnSame[u]; ok { // type and id need no escaping
			out = append(out, '"')
			out = append(out, t.types[ti]...)
			out = append(out, '/')
			out = append(out, ref[len(urnUUID):]...)
			return append(out, '"'), true
		}
	}
	return out, false
}

// addSeen records that entry index writes typ/id, returning the index of
// an earlier entry that wrote the same resource, or -1.
func (t *refTable) addSeen(typ, id string, index int) int {
	if u, ok := parseUUID(id); ok {
		if ti, ok := t.typeIndex(typ); ok {
			k := typedUUID{ti, u}
			if prev, dup := t.seenUUID[k]; dup {
				return int(prev)
			}
			t.seenUUID[k] = int32(index)
			return -1
		}
	}
	k := typ + "/" + id
	if prev, dup := t.seenOther[k]; dup {
		return int(prev)
	}
	t.seenOther[k] = int32(index)
	return -1
}

// unresolved returns the first entry with a urn:uuid reference that no
// entry defines, and that reference, or -1.
func (t *refTable) unresolved() (int, string) {
	refs := make([]string, 0, len(t.pending))
	for ref := range t.pending {
		refs = append(refs, ref)
	}
	if len(refs) == 0 {
		return -1, ""
	}
	slices.SortFunc(refs, func(a, b string) int { return int(t.pending[a]) - int(t.pending[b]) })
	return int(t.pending[refs[0]]), refs[0]
}

// span is the position of a value in a byte slice.
type span struct{ start, end int }

// urnRef returns the value of a raw JSON string when it is a urn:uuid
// reference (escapes decoded, so an escaped "urn" is caught too).
func urnRef(raw []byte) (string, bool) {
	if !bytes.HasPrefix(raw[1:], []byte(urnUUID)) && bytes.IndexByte(raw, '\\') < 0 {
		return "", false
	}
	v := stringValue(raw)
	return v, strings.HasPrefix(v, urnUUID)
}

// notePending records, for the first pass, the urn:uuid references of
// entry index (spans refs in resource) that no entry has defined yet.
func (t *refTable) notePending(resource []byte, refs []span, index int) {
	for _, r := range refs {
		ref, ok := urnRef(resource[r.start:r.end])
		if !ok {
			continue
		}
		if _, known := t.lookupURN(ref); known {
			continue
		}
		if _, seen := t.pending[ref]; !seen {
			t.pending[ref] = int32(index)
		}
	}
}

// rewrite appends resource to out with every urn:uuid reference among
// refs replaced by the "Type/id" it stands for, failing on an unknown one.
func (t *refTable) rewrite(out, resource []byte, refs []span) ([]byte, error) {
	last := 0
	for _, r := range refs {
		ref, ok := urnRef(resource[r.start:r.end])
		if !ok {
			continue
		}
		out = append(out, resource[last:r.start]...)
		if out, ok = t.appendTarget(out, ref); !ok {
			return nil, invalidf("reference to unknown fullUrl %s", quoteID(ref))
		}
		last = r.end
	}
	return append(out, resource[last:]...), nil
}

// insertID returns resource (a valid object with a resourceType) with
// "id":id inserted right after its resourceType member.
func insertID(resource []byte, id string) []byte {
	at := -1
	w := walker{data: resource}
	_ = w.object(0, func(key []byte, escaped bool, value []byte) error {
		if at < 0 && keyIs(key, escaped, "resourceType") {
			at = w.pos
		}
		return nil
	})
	if at < 0 { // cannot happen: ParseHeader found a resourceType
		return resource
	}
	out := make([]byte, 0, len(resource)+len(id)+8)
	out = append(out, resource[:at]...)
	out = append(out, `,"id":`...)
	out = appendString(out, id)
	return append(out, resource[at:]...)
}
