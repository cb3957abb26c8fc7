package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dtm-project/dtm"
	"github.com/dtm-project/dtm/auth"
)

func TestServer_Record(t *testing.T) {
	f := newFixture(t)
	ctx := dtm.NewContextWithPrincipal(context.Background(), dtm.Principal{Client: clientID})
	if err := f.server.Record(ctx, dtm.AuditEvent{Action: dtm.AuditDownload, Practice: practiceA, Outcome: dtm.OutcomeSuccess,
		Detail: strings.Repeat("d", 1000)}); err != nil {
		t.Fatal(err)
	}
	events, err := f.server.AuditEvents(context.Background(), dtm.AuditQuery{Action: dtm.AuditDownload})
	if err != nil || len(events) != 1 {
		t.Fatalf("%+v, %v", events, err)
	}
	e := events[0]
	if e.Client != clientID || !e.Time.Equal(epoch) || len(e.Detail) > 510 {
		t.Errorf("event %+v", e)
	}
}

func TestWriteAuditNDJSON(t *testing.T) {
	events := []dtm.AuditEvent{
		{Seq: 1, Time: epoch, Client: clientID, Action: dtm.AuditToken, Outcome: dtm.OutcomeSuccess, Remote: "192.0.2.7", Detail: "granted system/*.rs"},
		{Seq: 2, Time: epoch, Action: dtm.AuditAccess, Outcome: dtm.OutcomeDenied},
		{Seq: 3, Time: epoch, Client: clientID, Action: dtm.AuditKickoff, Practice: practiceA, Job: "j1", Outcome: dtm.OutcomeError},
	}
	var buf bytes.Buffer
	if err := auth.WriteAuditNDJSON(&buf, events, "https://dtm.example"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines", len(lines))
	}
	type coding struct{ System, Code string }
	var got []struct {
		ResourceType, ID, Recorded, Outcome, Action string
		Type                                        coding
		Agent                                       []struct {
			Who struct {
				Identifier *struct{ Value string }
				Display    string
			}
			Requestor bool
			Network   *struct{ Address, Type string }
		}
		Entity []struct {
			What struct {
				Identifier struct{ System, Value string }
			}
		}
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line is not JSON: %q", l)
		}
	}
	if err := json.Unmarshal([]byte("["+strings.Join(lines, ",")+"]"), &got); err != nil {
		t.Fatal(err)
	}
	if got[0].ResourceType != "AuditEvent" || got[0].ID != "dtm-audit-1" || got[0].Recorded != "2026-03-27T17:00:00Z" ||
		got[0].Outcome != "0" || got[0].Agent[0].Who.Identifier.Value != clientID || !got[0].Agent[0].Requestor ||
		got[0].Agent[0].Network.Address != "192.0.2.7" {
		t.Errorf("token event %+v", got[0])
	}
	if got[1].Outcome != "4" || got[1].Type.Code != "110113" || got[1].Agent[0].Who.Display != "unknown" {
		t.Errorf("refused access %+v", got[1])
	}
	if got[2].Outcome != "8" || len(got[2].Entity) != 2 || got[2].Entity[0].What.Identifier.Value != practiceA ||
		got[2].Entity[0].What.Identifier.System != "https://fhir.nhs.uk/Id/ods-organization-code" {
		t.Errorf("kick-off %+v", got[2])
	}
}
