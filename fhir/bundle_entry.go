package fhir

import "strings"

// entryInfo is what one Bundle entry says, after the entry rules of
// ReadBundleWith are applied.
type entryInfo struct {
	method, url, fullURL string
	h                    Header // the resource written or deleted
	hasID                bool   // the resource carries its own id
	resource             []byte // raw resource, nil when absent
	refs                 []span // its "reference" strings, offsets in resource
}

// parseEntry validates one raw Bundle entry and works out what it writes,
// in a single pass over its bytes. The spans of the resource's references
// are appended to refs (scratch space, reused between entries).
func parseEntry(raw []byte, refs []span) (entryInfo, error) {
	var e entryInfo
	var fullURL, resource, request []byte
	var keys keySet
	var hs headerScan
	w := walker{data: raw, sub: hs.member, subKey: "resource"}
	w.refs = func(start, end int) error {
		refs = append(refs, span{start, end})
		return nil
	}
	err := w.walkObject(func(key []byte, escaped bool, value []byte) error {
		if escaped {
			key = []byte(decodeKey(key, true))
		}
		if keys.add(key) {
			return invalidf("duplicate key %s", quoteID(string(key)))
		}
		switch string(key) {
		case "fullUrl":
			fullURL = value
		case "resource":
			resource = value
		case "request":
			request = value
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if fullURL != nil {
		if !isString(fullURL) {
			return e, invalidf("fullUrl is not a string")
		}
		e.fullURL = stringValue(fullURL)
	}
	if request != nil {
		if e.method, e.url, err = parseRequest(request); err != nil {
			return e, err
		}
	}
	if resource != nil {
		if resource[0] != '{' {
			return e, invalidf("resource is not an object")
		}
		if e.h, e.hasID, err = hs.result(); err != nil {
			return e, err
		}
		e.resource = resource
		e.refs = refs[:0] // keep those in the resource, rebased, in place
		for _, r := range refs {
			if r.start >= w.subStart && r.end <= w.subEnd {
				e.refs = append(e.refs, span{r.start - w.subStart, r.end - w.subStart})
			}
		}
	}
	return e, e.resolve()
}

// parseRequest returns an entry's request.method and request.url.
func parseRequest(raw []byte) (method, url string, err error) {
	if raw[0] != '{' {
		return "", "", invalidf("request is not an object")
	}
	var m, u []byte
	err = walkObject(raw, func(key []byte, escaped bool, value []byte) error {
		switch {
		case keyIs(key, escaped, "method"):
			m = value
		case keyIs(key, escaped, "url"):
			u = value
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	if m == nil || u == nil {
		return "", "", invalidf("request needs a method and a url")
	}
	if !isString(m) || !isString(u) {
		return "", "", invalidf("request.method and request.url must be strings")
	}
	return stringValue(m), stringValue(u), nil
}

// resolve applies the entry rules (see ReadBundleWith) and sets e.h.
func (e *entryInfo) resolve() error {
	switch e.method {
	case "":
		if e.resource == nil {
			return invalidf("entry has neither resource nor request")
		}
		if !e.hasID {
			return invalidf("missing id")
		}
	case "PUT":
		typ, id, err := typeAndID("PUT", e.url)
		if err != nil {
			return err
		}
		if e.resource == nil {
			return invalidf("PUT without a resource")
		}
		if typ != e.h.ResourceType {
			return invalidf("request.url type %s does not match resourceType %s", quoteID(typ), quoteID(e.h.ResourceType))
		}
		if e.hasID && e.h.ID != id {
			return invalidf("resource id %s does not match request.url id %s", quoteID(e.h.ID), quoteID(id))
		}
		e.h.ID = id
	case "POST":
		if e.resource == nil {
			return invalidf("POST without a resource")
		}
		if e.url != e.h.ResourceType {
			return invalidf("POST request.url must be the resource type %s", quoteID(e.h.ResourceType))
		}
		if e.hasID {
			return nil
		}
		uuid, ok := strings.CutPrefix(e.fullURL, urnUUID)
		if !ok {
			return invalidf("POST of a resource without id needs a urn:uuid fullUrl")
		}
		if err := CheckID(uuid); err != nil {
			return invalidf("fullUrl cannot serve as id: %s", err.Error())
		}
		e.h.ID = uuid
	case "DELETE":
		typ, id, err := typeAndID("DELETE", e.url)
		if err != nil {
			return err
		}
		e.h = Header{ResourceType: typ, ID: id}
	case "GET", "HEAD", "PATCH":
		return &inputError{kind: ErrNotSupported, msg: "request method " + e.method + " is not supported"}
	default:
		return invalidf("invalid request method %s", quoteID(e.method))
	}
	return nil
}

// typeAndID parses the url of a PUT or DELETE, which must be "Type/id".
// It never echoes the url: a conditional one can hold an NHS number.
func typeAndID(method, url string) (typ, id string, err error) {
	if strings.ContainsRune(url, '?') {
		return "", "", &inputError{kind: ErrNotSupported, msg: "conditional " + method + " is not supported"}
	}
	typ, id, ok := strings.Cut(url, "/")
	if !ok || strings.ContainsRune(id, '/') {
		return "", "", invalidf("%s request.url must be Type/id", method)
	}
	if err := CheckType(typ); err != nil {
		return "", "", invalidf("%s request.url: %s", method, err.Error())
	}
	if err := CheckID(id); err != nil {
		return "", "", invalidf("%s request.url: %s", method, err.Error())
	}
	return typ, id, nil
}
