package jiracloud

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	json "github.com/go-json-experiment/json/v1"
)

// Write endpoints of REST v3 (classic scope write:jira-work): create and
// edit an issue, move it through its workflow, comment on it. Rich text
// (description, comment body) is Atlassian Document Format; callers build it
// (jira.ADF turns plain text into a document).

// Fields is a REST v3 "fields" object: field id to value, in Jira's shapes
// ({"key": ...} for a project, {"name": ...} for a priority or issue type,
// {"accountId": ...} for a user, null to clear).
type Fields map[string]any

// CreatedIssue is what POST /issue answers.
type CreatedIssue struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Self string `json:"self"`
}

// CreateIssue creates an issue. Jira validates the fields: a 400 APIError
// names each field it refused (APIError.Messages "field: message").
func (c *Client) CreateIssue(ctx context.Context, fields Fields) (*CreatedIssue, error) {
	var out CreatedIssue
	if err := c.Do(ctx, http.MethodPost, "/issue", map[string]any{"fields": fields}, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errors.New("POST /issue: Jira answered no issue id")
	}
	return &out, nil
}

// EditIssue sets fields of an issue (204 from Jira). Status is not a field:
// it changes through DoTransition.
func (c *Client) EditIssue(ctx context.Context, idOrKey string, fields Fields) error {
	return c.Do(ctx, http.MethodPut, "/issue/"+url.PathEscape(idOrKey), map[string]any{"fields": fields}, nil)
}

// Transition is one workflow transition available from an issue's current
// status.
type Transition struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	To   struct {
		ID             string `json:"id"`
		Name           string `json:"name"`
		StatusCategory struct {
			Key string `json:"key"`
		} `json:"statusCategory"`
	} `json:"to"`
}

// Transitions lists the transitions the issue's workflow offers from its
// current status.
func (c *Client) Transitions(ctx context.Context, idOrKey string) ([]Transition, error) {
	var out struct {
		Transitions []Transition `json:"transitions"`
	}
	if err := c.Do(ctx, http.MethodGet, "/issue/"+url.PathEscape(idOrKey)+"/transitions", nil, &out); err != nil {
		return nil, err
	}
	return out.Transitions, nil
}

// DoTransition performs a transition (one of Transitions' ids).
func (c *Client) DoTransition(ctx context.Context, idOrKey, transitionID string) error {
	return c.Do(ctx, http.MethodPost, "/issue/"+url.PathEscape(idOrKey)+"/transitions",
		map[string]any{"transition": map[string]string{"id": transitionID}}, nil)
}

// AddComment adds a comment whose body is an ADF document and returns the
// comment as Jira answers it (REST v3, the shape a sync reads).
func (c *Client) AddComment(ctx context.Context, idOrKey string, body any) (json.RawMessage, error) {
	var out json.RawMessage
	if err := c.Do(ctx, http.MethodPost, "/issue/"+url.PathEscape(idOrKey)+"/comment", map[string]any{"body": body}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// IssueRaw reads one issue with the given fields (nil: Jira's default,
// *all), unparsed.
func (c *Client) IssueRaw(ctx context.Context, idOrKey string, fields []string) (json.RawMessage, error) {
	p := "/issue/" + url.PathEscape(idOrKey)
	if len(fields) > 0 {
		p += "?" + url.Values{"fields": {strings.Join(fields, ",")}}.Encode()
	}
	var out json.RawMessage
	if err := c.Do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// MaxIssuePage is the page size Search asks for at most: Jira lowers its cap
// as more fields are requested (JIRA.md §5).
const MaxIssuePage = 100

// IssuePage is one page of search/jql with fields.
type IssuePage struct {
	Issues []json.RawMessage
	// NextPageToken continues the search; empty on the last page.
	NextPageToken string
	IsLast        bool
}

// Search reads one page of issues matching jql (bounded) with the given
// fields, starting at nextPageToken ("" for the first page).
func (c *Client) Search(ctx context.Context, jql, nextPageToken string, maxResults int, fields []string) (*IssuePage, error) {
	if maxResults <= 0 || maxResults > MaxIssuePage {
		maxResults = MaxIssuePage
	}
	in := map[string]any{"jql": jql, "maxResults": maxResults, "fields": fields}
	if nextPageToken != "" {
		in["nextPageToken"] = nextPageToken
	}
	var out struct {
		Issues        []json.RawMessage `json:"issues"`
		NextPageToken string            `json:"nextPageToken"`
		IsLast        *bool             `json:"isLast"`
	}
	if err := c.Do(ctx, http.MethodPost, "/search/jql", in, &out); err != nil {
		return nil, err
	}
	p := &IssuePage{Issues: out.Issues, NextPageToken: out.NextPageToken}
	p.IsLast = out.NextPageToken == "" || (out.IsLast != nil && *out.IsLast)
	if p.IsLast {
		p.NextPageToken = ""
	}
	return p, nil
}
