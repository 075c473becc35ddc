package jiracloud

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
)

// ProjectPage is one page of project/search (a PageBean).
type ProjectPage struct {
	Values []json.RawMessage `json:"values"`
	IsLast bool              `json:"isLast"`
	Total  int               `json:"total"`
}

// SearchProjects reads one page of projects; keys narrows to those keys.
// Jira answers 404 when nothing matches, which is reported as an empty page.
func (c *Client) SearchProjects(ctx context.Context, startAt int, keys []string) (*ProjectPage, error) {
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {"100"}, "expand": {"description,lead,url"}}
	for _, k := range keys {
		q.Add("keys", k)
	}
	var p ProjectPage
	err := c.Do(ctx, http.MethodGet, "/project/search?"+q.Encode(), nil, &p)
	if IsStatus(err, http.StatusNotFound) {
		return &ProjectPage{IsLast: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// ProjectKeys lists every project key the grant can see.
func (c *Client) ProjectKeys(ctx context.Context) ([]string, error) {
	var keys []string
	for start := 0; ; {
		p, err := c.SearchProjects(ctx, start, nil)
		if err != nil {
			return nil, err
		}
		for _, raw := range p.Values {
			var pr struct {
				Key string `json:"key"`
			}
			if json.Unmarshal(raw, &pr) == nil && pr.Key != "" {
				keys = append(keys, pr.Key)
			}
		}
		if p.IsLast || len(p.Values) == 0 {
			return keys, nil
		}
		start += len(p.Values)
	}
}
