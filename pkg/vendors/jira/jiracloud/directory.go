package jiracloud

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/store"
)

// PageBean is Jira's generic offset page (group/bulk, group/member,
// priority/search).
type PageBean struct {
	Values     []json.RawMessage `json:"values"`
	StartAt    int               `json:"startAt"`
	MaxResults int               `json:"maxResults"`
	Total      int               `json:"total"`
	IsLast     bool              `json:"isLast"`
}

// Last tells whether no page follows. An empty page always ends the list,
// so a server that never sets isLast cannot make a caller loop forever.
func (p *PageBean) Last() bool {
	return p.IsLast || len(p.Values) == 0 || (p.Total > 0 && p.StartAt+len(p.Values) >= p.Total)
}

func pageQuery(startAt, maxResults int) url.Values {
	q := url.Values{"startAt": {strconv.Itoa(startAt)}}
	if maxResults > 0 {
		q.Set("maxResults", strconv.Itoa(maxResults))
	}
	return q
}

// MaxUsersPage is the largest users/search page.
const MaxUsersPage = 1000

// Users reads one page of users/search: active, inactive and deleted
// accounts, as a plain array (no PageBean). Jira may answer fewer than
// maxResults before the end, so only an empty page means the end.
func (c *Client) Users(ctx context.Context, startAt, maxResults int) ([]json.RawMessage, error) {
	if maxResults <= 0 || maxResults > MaxUsersPage {
		maxResults = MaxUsersPage
	}
	var out []json.RawMessage
	if err := c.Do(ctx, http.MethodGet, "/users/search?"+pageQuery(startAt, maxResults).Encode(), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Groups reads one page of group/bulk: {groupId, name} objects.
func (c *Client) Groups(ctx context.Context, startAt, maxResults int) (*PageBean, error) {
	var p PageBean
	if err := c.Do(ctx, http.MethodGet, "/group/bulk?"+pageQuery(startAt, maxResults).Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// MaxMembersPage is the largest group/member page.
const MaxMembersPage = 50

// GroupMembers reads one page of a group's members by its immutable
// groupId, inactive accounts included (membership does not end with
// deactivation).
func (c *Client) GroupMembers(ctx context.Context, groupID string, startAt, maxResults int) (*PageBean, error) {
	if maxResults <= 0 || maxResults > MaxMembersPage {
		maxResults = MaxMembersPage
	}
	q := pageQuery(startAt, maxResults)
	q.Set("groupId", groupID)
	q.Set("includeInactiveUsers", "true")
	var p PageBean
	if err := c.Do(ctx, http.MethodGet, "/group/member?"+q.Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Myself is the calling user as GET /myself describes it.
type Myself struct {
	AccountID string `json:"accountId"`
	// TimeZone is the IANA zone in which Jira reads this user's JQL dates.
	TimeZone string `json:"timeZone"`
}

// Myself reads the user the grant acts as.
func (c *Client) Myself(ctx context.Context) (*Myself, error) {
	var m Myself
	if err := c.Do(ctx, http.MethodGet, "/myself", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Statuses lists the statuses of active workflows with their categories.
func (c *Client) Statuses(ctx context.Context) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if err := c.Do(ctx, http.MethodGet, "/status", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Priorities reads one page of priority/search (priority/ is deprecated).
func (c *Client) Priorities(ctx context.Context, startAt int) (*PageBean, error) {
	var p PageBean
	if err := c.Do(ctx, http.MethodGet, "/priority/search?"+pageQuery(startAt, 50).Encode(), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Catalog reads what the site defines for mapping: its statuses with their
// categories, and its priorities in Jira's order (highest first).
func (c *Client) Catalog(ctx context.Context, now time.Time) (*store.Catalog, error) {
	cat := &store.Catalog{ReadAt: now}
	sts, err := c.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	for _, raw := range sts {
		var s struct {
			Name     string `json:"name"`
			Category struct {
				Key string `json:"key"`
			} `json:"statusCategory"`
		}
		if json.Unmarshal(raw, &s) == nil && s.Name != "" {
			cat.Statuses = append(cat.Statuses, store.CatalogStatus{Name: s.Name, Category: s.Category.Key})
		}
	}
	for start := 0; ; {
		p, err := c.Priorities(ctx, start)
		if err != nil {
			return nil, err
		}
		for _, raw := range p.Values {
			var pr struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(raw, &pr) == nil && pr.Name != "" {
				cat.Priorities = append(cat.Priorities, pr.Name)
			}
		}
		if p.Last() || len(p.Values) == 0 {
			return cat, nil
		}
		start += len(p.Values)
	}
}
