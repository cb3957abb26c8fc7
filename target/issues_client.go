package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/dtm-project/dtm"
)

// This file is the Client's side of the source's data issue endpoints
// (/dtm/v1/practices/{ods}/issues; package source, IssueServer).

// Issue is a data issue as the source reports it: the issue and its timing
// against the source's response-time target.
type Issue struct {
	dtm.DataIssue
	Timing dtm.IssueTiming
}

// IssueRequest is the body of a raise or of an action on an issue. Raise
// uses every field; actions use Text and Actor, and update also Resources,
// ResourceCount, Outcome, Severity and Title.
type IssueRequest struct {
	Severity      string          `json:"severity,omitempty"`
	Category      string          `json:"category,omitempty"`
	Rule          string          `json:"rule,omitempty"`
	Key           string          `json:"key,omitempty"`
	Title         string          `json:"title,omitempty"`
	Text          string          `json:"text,omitempty"`
	Resources     []string        `json:"resources,omitempty"`
	ResourceCount int             `json:"resourceCount,omitempty"`
	Outcome       json.RawMessage `json:"outcome,omitempty"`
	Actor         string          `json:"actor,omitempty"`
}

// issueJSON mirrors source.IssueJSON.
type issueJSON struct {
	ID, Practice, Key, Status, Severity, Category, Rule, Title, Text string
	Resources                                                        []string
	ResourceCount                                                    int
	Outcome                                                          json.RawMessage
	RaisedBy, RaisedAt, UpdatedAt, AwaitingSince, RespondedAt        string
	ClosedAt, Due                                                    string
	ResponseSeconds                                                  float64
	Overdue, Late                                                    bool
	WaitingOn                                                        string
	History                                                          []struct {
		Seq                           int
		At                            string
		Actor, Action, From, To, Text string
	}
}

// issue converts the wire form; unreadable instants are an EInvalid error.
func (j issueJSON) issue() (Issue, error) {
	i := Issue{DataIssue: dtm.DataIssue{
		ID: j.ID, Practice: j.Practice, Key: j.Key, Status: j.Status, Severity: j.Severity, Category: j.Category,
		Rule: j.Rule, Title: j.Title, Text: j.Text, Resources: j.Resources, ResourceCount: j.ResourceCount,
		RaisedBy: j.RaisedBy,
	}, Timing: dtm.IssueTiming{
		ResponseTime: time.Duration(j.ResponseSeconds * float64(time.Second)),
		Overdue:      j.Overdue, Late: j.Late, WaitingOn: j.WaitingOn,
	}}
	if len(j.Outcome) > 0 {
		i.Outcome = []byte(j.Outcome)
	}
	var err error
	for _, f := range []struct {
		dst *time.Time
		src string
	}{{&i.RaisedAt, j.RaisedAt}, {&i.UpdatedAt, j.UpdatedAt}, {&i.AwaitingSince, j.AwaitingSince},
		{&i.RespondedAt, j.RespondedAt}, {&i.ClosedAt, j.ClosedAt}, {&i.Timing.Due, j.Due}} {
		if *f.dst, err = parseInstant(f.src); err != nil {
			return i, err
		}
	}
	for _, h := range j.History {
		at, err := parseInstant(h.At)
		if err != nil {
			return i, err
		}
		i.History = append(i.History, dtm.IssueEvent{Seq: h.Seq, At: at, Actor: h.Actor, Action: h.Action,
			From: h.From, To: h.To, Text: h.Text})
	}
	return i, nil
}

// issuesURL returns the practice's issues URL with the path elements
// appended.
func (c *Client) issuesURL(practice string, elem ...string) string {
	return c.root.JoinPath(append([]string{"dtm", "v1", "practices", url.PathEscape(practice), "issues"}, elem...)...).String()
}

// RaiseIssue raises an issue about the practice and returns it as stored.
// It returns an EConflict error when an active issue has the same Key, and
// the source's refusal (EInvalid, EForbidden, ...) as a *StatusError.
func (c *Client) RaiseIssue(ctx context.Context, practice string, r IssueRequest) (Issue, error) {
	if !dtm.ValidODS(practice) {
		return Issue{}, dtm.Errorf(dtm.EInvalid, "raise issue: invalid ODS code")
	}
	return c.issueCall(ctx, "raise issue", http.MethodPost, c.issuesURL(practice), r, http.StatusCreated)
}

// IssueAction takes an action ("acknowledge", "answer", "resolve",
// "reject", "close", "reopen", "comment" or "update"; see dtm.Issue*) on
// issue id and returns the issue after it. An action the issue's status
// does not allow is an EConflict error.
func (c *Client) IssueAction(ctx context.Context, practice, id, action string, r IssueRequest) (Issue, error) {
	if !dtm.ValidODS(practice) {
		return Issue{}, dtm.Errorf(dtm.EInvalid, "issue action: invalid ODS code")
	}
	return c.issueCall(ctx, action+" issue", http.MethodPost, c.issuesURL(practice, id, action), r, http.StatusOK)
}

// GetIssue returns one issue with its history, or an ENotFound error.
func (c *Client) GetIssue(ctx context.Context, practice, id string) (Issue, error) {
	var j issueJSON
	if err := c.getJSON(ctx, "get issue", c.issuesURL(practice, id), true, &j); err != nil {
		return Issue{}, err
	}
	return j.issue()
}

// ListIssues returns the practice's issues (without history, resources
// and outcome) filtered by status ("" for all; comma-separated statuses,
// or "active" for every status but closed), ordered by id.
func (c *Client) ListIssues(ctx context.Context, practice, status string) ([]Issue, error) {
	u := c.issuesURL(practice)
	if status != "" {
		u += "?" + url.Values{"status": {status}}.Encode()
	}
	var list struct {
		Issues []issueJSON
	}
	if err := c.getJSON(ctx, "list issues", u, true, &list); err != nil {
		return nil, err
	}
	out := make([]Issue, 0, len(list.Issues))
	for _, j := range list.Issues {
		i, err := j.issue()
		if err != nil {
			return nil, fmt.Errorf("list issues: %w", err)
		}
		out = append(out, i)
	}
	return out, nil
}

// issueCall sends body as JSON and decodes the issue in a response with
// status want. Transport failures and transient statuses are retried (a
// raise retried after a lost response is refused by its key, an action by
// the state machine; only comments can repeat).
func (c *Client) issueCall(ctx context.Context, op, method, u string, body any, want int) (Issue, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Issue{}, fmt.Errorf("%s: %w", op, err)
	}
	var j issueJSON
	if err := c.sendJSON(ctx, op, method, u, b, want, &j); err != nil {
		return Issue{}, err
	}
	return j.issue()
}

// sendJSON sends body (JSON) and decodes a response with status want into
// v; any other status is a *StatusError.
func (c *Client) sendJSON(ctx context.Context, op, method, u string, body []byte, want int, v any) error {
	resp, err := c.send(ctx, op, func() (*http.Request, error) {
		req, err := c.request(ctx, method, u, true)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, application/fhir+json")
		return req, nil
	}, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return c.statusError(op, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	return nil
}
