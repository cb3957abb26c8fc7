package bulk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/dtm-project/dtm"
)

// handleBinary reads a Binary resource of one of the caller's practices.
// With Accept: application/fhir+json it returns the resource as stored;
// otherwise the decoded content with its contentType, Content-Length, a
// strong ETag (the resource's content hash) and Range support.
func (s *Server) handleBinary(w http.ResponseWriter, r *http.Request) {
	if !s.caller(r).CanReadType("Binary") {
		s.fail(w, r, dtm.Errorf(dtm.EForbidden, "the access token's scopes do not allow reading Binary"))
		return
	}
	c, err := s.findBinary(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+c.Hash+`"`)
	if wantsResource(r.Header.Values("Accept")) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Last-Modified", c.CommitTime.UTC().Format(http.TimeFormat))
		w.Write(c.JSON)
		return
	}
	var bin struct {
		ContentType string `json:"contentType"`
		Data        []byte `json:"data"` // base64 in JSON
	}
	if err := json.Unmarshal(c.JSON, &bin); err != nil {
		s.fail(w, r, fmt.Errorf("decode Binary: %w", err))
		return
	}
	ct := bin.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", c.CommitTime, bytes.NewReader(bin.Data))
}

// findBinary returns the current Binary named in the path from the first of
// the caller's practices (in ODS order) that holds it.
func (s *Server) findBinary(r *http.Request) (dtm.Change, error) {
	ctx := r.Context()
	practices, err := s.readablePractices(ctx, s.caller(r))
	if err != nil {
		return dtm.Change{}, err
	}
	id := r.PathValue("id")
	for _, ods := range practices {
		c, err := s.cfg.Journal.Get(ctx, ods, "Binary", id)
		switch dtm.ErrorCode(err) {
		case "":
			return c, nil
		case dtm.ENotFound:
			continue
		}
		return c, fmt.Errorf("get Binary: %w", err)
	}
	return dtm.Change{}, dtm.Errorf(dtm.ENotFound, "no such Binary")
}

// wantsResource reports whether Accept asks for the FHIR resource rather
// than its content.
func wantsResource(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "application/fhir+json", "application/json+fhir":
				return true
			}
		}
	}
	return false
}
