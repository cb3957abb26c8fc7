package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/dtm-project/dtm"
)

var _ dtm.Audit = (*Server)(nil)

// maxDetail bounds the stored detail of an audit event.
const maxDetail = 500

// Record appends e to the audit log. It fills in, when empty, Time from the
// server's clock, Client from the request's dtm.Principal and Remote from the
// caller's address (both present in a context that came through
// Middleware), and truncates Detail. e.Detail must not contain patient data,
// tokens or assertions. It returns the store's error, wrapped; the caller
// should then fail the request rather than serve it unaudited.
func (s *Server) Record(ctx context.Context, e dtm.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = s.clock.Now()
	}
	if e.Client == "" {
		if p, ok := dtm.PrincipalFromContext(ctx); ok {
			e.Client = p.Client
		}
	}
	if e.Remote == "" {
		e.Remote = remoteFromContext(ctx)
	}
	e.Detail = truncate(e.Detail, maxDetail)
	if err := s.store.Record(ctx, e); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// AuditEvents returns the audit events matching q, in order.
func (s *Server) AuditEvents(ctx context.Context, q dtm.AuditQuery) ([]dtm.AuditEvent, error) {
	events, err := s.store.AuditEvents(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit events: %w", err)
	}
	return events, nil
}

// WriteAuditNDJSON writes events to w as FHIR R4 AuditEvent resources, one
// per line. observer names the dtm installation that recorded them (for
// example its base URL). It returns the first write error.
func WriteAuditNDJSON(w io.Writer, events []dtm.AuditEvent, observer string) error {
	bw := bufio.NewWriter(w)
	for _, e := range events {
		b, err := json.Marshal(fhirAuditEvent(e, observer))
		if err != nil {
			return fmt.Errorf("audit event %d: %w", e.Seq, err)
		}
		bw.Write(b)
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write audit ndjson: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write audit ndjson: %w", err)
	}
	return nil
}

// The FHIR R4 AuditEvent shape we produce.
type (
	fhirCoding struct {
		System  string `json:"system,omitempty"`
		Code    string `json:"code"`
		Display string `json:"display,omitempty"`
	}
	fhirIdentifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value"`
	}
	fhirReference struct {
		Identifier *fhirIdentifier `json:"identifier,omitempty"`
		Display    string          `json:"display,omitempty"`
	}
	fhirAgent struct {
		Who       fhirReference `json:"who"`
		Requestor bool          `json:"requestor"`
		Network   *fhirNetwork  `json:"network,omitempty"`
	}
	fhirNetwork struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	}
	fhirEntity struct {
		What fhirReference `json:"what"`
		Type *fhirCoding   `json:"type,omitempty"`
	}
	fhirAudit struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Type         fhirCoding   `json:"type"`
		Subtype      []fhirCoding `json:"subtype"`
		Action       string       `json:"action,omitempty"`
		Recorded     string       `json:"recorded"`
		Outcome      string       `json:"outcome"`
		OutcomeDesc  string       `json:"outcomeDesc,omitempty"`
		Agent        []fhirAgent  `json:"agent"`
		Source       struct {
			Observer fhirReference `json:"observer"`
		} `json:"source"`
		Entity []fhirEntity `json:"entity,omitempty"`
	}
)

// Code systems of the AuditEvent mapping.
const (
	systemAuditType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	systemDTMAction   = "https://github.com/dtm-project/dtm/audit-action"
	systemODS         = "https://fhir.nhs.uk/Id/ods-organization-code"
	systemDTMClient   = "https://github.com/dtm-project/dtm/client-id"
	systemDTMJob      = "https://github.com/dtm-project/dtm/export-job"
	systemEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	auditTypeRest     = "rest"
	auditTypeDICOMSec = "110113" // Security Alert, for refused access
)

// fhirAuditEvent maps one audit event to a FHIR R4 AuditEvent.
func fhirAuditEvent(e dtm.AuditEvent, observer string) fhirAudit {
	a := fhirAudit{
		ResourceType: "AuditEvent",
		ID:           "dtm-audit-" + strconv.FormatInt(e.Seq, 10),
		Type:         fhirCoding{System: systemAuditType, Code: auditTypeRest, Display: "RESTful Operation"},
		Subtype:      []fhirCoding{{System: systemDTMAction, Code: e.Action}},
		Action:       auditAction(e.Action),
		Recorded:     e.Time.UTC().Format(time.RFC3339Nano),
		Outcome:      auditOutcome(e.Outcome),
		OutcomeDesc:  e.Detail,
	}
	if e.Action == dtm.AuditAccess {
		a.Type = fhirCoding{System: "http://dicom.nema.org/resources/ontology/DCM", Code: auditTypeDICOMSec, Display: "Security Alert"}
	}
	agent := fhirAgent{Requestor: true, Who: fhirReference{Display: "unknown"}}
	if e.Client != "" {
		agent.Who = fhirReference{Identifier: &fhirIdentifier{System: systemDTMClient, Value: e.Client}}
	}
	if e.Remote != "" {
		agent.Network = &fhirNetwork{Address: e.Remote, Type: "2"} // 2 = IP address
	}
	a.Agent = []fhirAgent{agent}
	a.Source.Observer = fhirReference{Display: observer}
	if e.Practice != "" {
		a.Entity = append(a.Entity, fhirEntity{
			What: fhirReference{Identifier: &fhirIdentifier{System: systemODS, Value: e.Practice}},
			Type: &fhirCoding{System: systemEntityType, Code: "2", Display: "System Object"},
		})
	}
	if e.Job != "" {
		a.Entity = append(a.Entity, fhirEntity{
			What: fhirReference{Identifier: &fhirIdentifier{System: systemDTMJob, Value: e.Job}},
			Type: &fhirCoding{System: systemEntityType, Code: "2", Display: "System Object"},
		})
	}
	return a
}

// auditAction maps an action to AuditEvent.action: C, R, U, D or E.
func auditAction(action string) string {
	switch action {
	case dtm.AuditIngest:
		return "U"
	case dtm.AuditCancel:
		return "D"
	case dtm.AuditStatus, dtm.AuditDownload, dtm.AuditBinary, dtm.AuditRead:
		return "R"
	case dtm.AuditIssue, dtm.AuditAdmin:
		return "U"
	}
	return "E" // token, access, kick-off: operations
}

// auditOutcome maps an outcome to AuditEvent.outcome: 0 success, 4 minor
// failure (refused), 8 serious failure (server error).
func auditOutcome(outcome string) string {
	switch outcome {
	case dtm.OutcomeSuccess:
		return "0"
	case dtm.OutcomeDenied:
		return "4"
	}
	return "8"
}
