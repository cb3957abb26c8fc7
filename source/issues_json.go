package source

import (
	"encoding/json"

	"github.com/dtm-project/dtm"
)

// IssueJSON is a data issue as the issue endpoints send it: the issue, its
// history (for single issues), and its timing against the response-time
// target at the time of the request. Times are FHIR instants.
type IssueJSON struct {
	ID            string          `json:"id"`
	Practice      string          `json:"practice"`
	Key           string          `json:"key,omitempty"`
	Status        string          `json:"status"`
	Severity      string          `json:"severity"`
	Category      string          `json:"category"`
	Rule          string          `json:"rule,omitempty"`
	Title         string          `json:"title,omitempty"`
	Text          string          `json:"text,omitempty"`
	Resources     []string        `json:"resources,omitempty"`
	ResourceCount int             `json:"resourceCount"`
	Outcome       json.RawMessage `json:"outcome,omitempty"`
	RaisedBy      string          `json:"raisedBy"`
	RaisedAt      string          `json:"raisedAt"`
	UpdatedAt     string          `json:"updatedAt"`
	AwaitingSince string          `json:"awaitingSince,omitempty"`
	RespondedAt   string          `json:"respondedAt,omitempty"`
	ClosedAt      string          `json:"closedAt,omitempty"`

	// Timing (dtm.IssueTiming): when the source's response is due, how
	// long it took, whether it is overdue or was late, whose turn it is.
	Due             string  `json:"due,omitempty"`
	ResponseSeconds float64 `json:"responseSeconds,omitempty"`
	Overdue         bool    `json:"overdue"`
	Late            bool    `json:"late"`
	WaitingOn       string  `json:"waitingOn,omitempty"`

	History []IssueEventJSON `json:"history,omitempty"`
}

// IssueEventJSON is one entry of an issue's history.
type IssueEventJSON struct {
	Seq    int    `json:"seq"`
	At     string `json:"at"`
	Actor  string `json:"actor,omitempty"`
	Action string `json:"action"`
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	Text   string `json:"text,omitempty"`
}

// issueJSON converts i, with its timing now; full includes the history.
func (s *IssueServer) issueJSON(i dtm.DataIssue, full bool) IssueJSON {
	tm := s.Policy.Timing(i, s.now())
	j := IssueJSON{
		ID: i.ID, Practice: i.Practice, Key: i.Key, Status: i.Status, Severity: i.Severity, Category: i.Category,
		Rule: i.Rule, Title: i.Title, Text: i.Text, Resources: i.Resources, ResourceCount: i.ResourceCount,
		Outcome: json.RawMessage(i.Outcome), RaisedBy: i.RaisedBy, RaisedAt: instant(i.RaisedAt),
		UpdatedAt: instant(i.UpdatedAt), AwaitingSince: instant(i.AwaitingSince), RespondedAt: instant(i.RespondedAt),
		ClosedAt: instant(i.ClosedAt), Due: instant(tm.Due), ResponseSeconds: tm.ResponseTime.Seconds(),
		Overdue: tm.Overdue, Late: tm.Late, WaitingOn: tm.WaitingOn,
	}
	if len(i.Outcome) == 0 {
		j.Outcome = nil
	}
	if full {
		for _, e := range i.History {
			j.History = append(j.History, IssueEventJSON{Seq: e.Seq, At: instant(e.At), Actor: e.Actor,
				Action: e.Action, From: e.From, To: e.To, Text: e.Text})
		}
	}
	return j
}
