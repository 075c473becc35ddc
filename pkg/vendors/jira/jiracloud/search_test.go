package jiracloud_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

// simClient runs the real 3LO flow against a simulator and returns a client
// of its first site.
func simClient(t *testing.T, opts jirasim.Options) (*jirasim.Server, *jiracloud.Client) {
	t.Helper()
	sim := jirasim.NewTestServer(t, opts)
	ep := jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()}
	cfg := jiracloud.OAuthConfig(ep, sim.ClientID(), sim.ClientSecret(), "https://app.example.com/oauth/callback")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(jiracloud.AuthCodeURL(cfg, "state"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	ctx := context.Background()
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"))
	require.NoError(t, err)
	return sim, jiracloud.NewClient(ep, sim.Default().ID(), cfg.Client(ctx, tok))
}

func projectJQL(keys []string) string {
	return `project IN ("` + strings.Join(keys, `","`) + `") ORDER BY id ASC`
}

func TestSearchIDsPagesEveryIssueOnceInIDOrder(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 3, Projects: 2, IssuesPerProject: 23})
	ctx := context.Background()
	jql := projectJQL(sim.Default().ProjectKeys())

	var ids []string
	token, pages := "", 0
	for {
		p, err := c.SearchIDs(ctx, jql, token, 10)
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(p.IDs), 10)
		ids = append(ids, p.IDs...)
		if p.IsLast {
			require.Empty(t, p.NextPageToken)
			break
		}
		require.NotEmpty(t, p.NextPageToken)
		token = p.NextPageToken
	}
	require.Equal(t, 5, pages)
	require.Len(t, ids, 46)
	seen := map[string]bool{}
	prev := int64(0)
	for _, id := range ids {
		require.False(t, seen[id], "issue %s twice", id)
		seen[id] = true
		n, err := strconv.ParseInt(id, 10, 64)
		require.NoError(t, err)
		require.Greater(t, n, prev, "ascending ids")
		prev = n
	}

	n, err := c.ApproximateCount(ctx, `project IN ("`+strings.Join(sim.Default().ProjectKeys(), `","`)+`")`)
	require.NoError(t, err)
	require.Equal(t, 46, n)

	// Jira refuses unbounded JQL (JIRA.md §5).
	_, err = c.SearchIDs(ctx, "ORDER BY key", "", 10)
	require.True(t, jiracloud.IsStatus(err, http.StatusBadRequest), "%v", err)
}

func TestBulkFetchCommentsAndAttachments(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 4, Projects: 1, IssuesPerProject: 5, CommentsPerIssue: 25})
	ctx := context.Background()
	p, err := c.SearchIDs(ctx, projectJQL(sim.Default().ProjectKeys()), "", 0)
	require.NoError(t, err)
	require.Len(t, p.IDs, 5)

	res, err := c.BulkFetch(ctx, append([]string{"999999"}, p.IDs...), []string{"*all", "-worklog"})
	require.NoError(t, err)
	require.Len(t, res.Issues, 5, "an unknown id is left out")
	var is struct {
		ID     string `json:"id"`
		Fields struct {
			Updated string `json:"updated"`
			Comment struct {
				Comments []json.RawMessage `json:"comments"`
				Total    int               `json:"total"`
			} `json:"comment"`
			Attachment []json.RawMessage `json:"attachment"`
			Worklog    json.RawMessage   `json:"worklog"`
		} `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(res.Issues[0], &is))
	require.Equal(t, p.IDs[0], is.ID)
	require.NotEmpty(t, is.Fields.Updated)
	require.Equal(t, 25, is.Fields.Comment.Total)
	require.Len(t, is.Fields.Comment.Comments, 20, "at most 20 comments are embedded")
	require.NotNil(t, is.Fields.Attachment)
	require.Nil(t, is.Fields.Worklog, "excluded field")

	// The rest come from issue/{id}/comment, in pages.
	var all []json.RawMessage
	for start := 0; ; {
		cp, err := c.Comments(ctx, is.ID, start, 10)
		require.NoError(t, err)
		all = append(all, cp.Comments...)
		if cp.IsLast() {
			break
		}
		start += len(cp.Comments)
	}
	require.Len(t, all, 25)

	raw, err := c.BulkFetchRaw(ctx, p.IDs, []string{"summary"}, make([]byte, 0, 16))
	require.NoError(t, err)
	var decoded jiracloud.BulkResult
	require.NoError(t, json.Unmarshal(raw, &decoded))
	require.Len(t, decoded.Issues, 5)
	_, err = c.BulkFetchRaw(ctx, make([]string, 101), nil, nil)
	require.ErrorIs(t, err, jiracloud.ErrTooManyIDs)

	_, err = c.BulkFetch(ctx, make([]string, 101), nil)
	require.ErrorIs(t, err, jiracloud.ErrTooManyIDs)
	_, err = c.Comments(ctx, "999999", 0, 0)
	require.True(t, jiracloud.IsStatus(err, http.StatusNotFound), "%v", err)
}

func TestUsersGroupsMembersStatusesPriorities(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 5, Projects: 1, IssuesPerProject: 1, Users: 23, Groups: 3})
	ctx := context.Background()

	var users int
	for start := 0; ; {
		page, err := c.Users(ctx, start, 10)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		users += len(page)
		start += len(page)
	}
	require.Equal(t, len(sim.Default().Users()), users)

	groups, err := c.Groups(ctx, 0, 0)
	require.NoError(t, err)
	require.True(t, groups.Last())
	require.Len(t, groups.Values, 3)
	var g struct {
		GroupID string `json:"groupId"`
		Name    string `json:"name"`
	}
	require.NoError(t, json.Unmarshal(groups.Values[0], &g))
	require.NotEmpty(t, g.GroupID)
	members, err := c.GroupMembers(ctx, g.GroupID, 0, 0)
	require.NoError(t, err)
	require.NotEmpty(t, members.Values)
	_, err = c.GroupMembers(ctx, "no-such-group", 0, 0)
	require.True(t, jiracloud.IsStatus(err, http.StatusNotFound), "%v", err)

	st, err := c.Statuses(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	pr, err := c.Priorities(ctx, 0)
	require.NoError(t, err)
	require.NotEmpty(t, pr.Values)

	me, err := c.Myself(ctx)
	require.NoError(t, err)
	require.Equal(t, sim.Default().Users()[0].AccountID, me.AccountID)
}

func TestPacerHonoursRetryAfterFromTheSimulator(t *testing.T) {
	sim, c := simClient(t, jirasim.Options{Seed: 6, Projects: 1, IssuesPerProject: 3})
	var limited int
	pacer := jiracloud.NewPacer(jiracloud.PacerConfig{})
	c = c.Observe(func(_, endpoint string, info jiracloud.RateInfo, _ error) {
		pacer.Observe(info)
		if info.Limited() {
			limited++
			require.Equal(t, "search/jql", endpoint)
			require.Equal(t, time.Second, info.RetryAfter)
			require.False(t, info.Reset.IsZero(), "X-RateLimit-Reset parsed")
			require.Equal(t, "jira-burst-based", info.Reason)
		}
	})
	sim.SetRateLimit(&jirasim.RateLimit{EveryNth: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	var page *jiracloud.IDPage
	done := make(chan error, 1)
	go func() {
		done <- pacer.Do(ctx, func(ctx context.Context) (err error) {
			page, err = c.SearchIDs(ctx, projectJQL(sim.Default().ProjectKeys()), "", 0)
			return err
		})
	}()
	// Every call is refused until the limit is lifted: the pacer keeps
	// waiting Retry-After (1s) between attempts.
	time.Sleep(1500 * time.Millisecond)
	sim.SetRateLimit(nil)
	require.NoError(t, <-done)
	require.Len(t, page.IDs, 3)
	require.GreaterOrEqual(t, limited, 2)
	require.GreaterOrEqual(t, time.Since(start), time.Duration(limited)*time.Second, "Retry-After was waited out each time")
}
