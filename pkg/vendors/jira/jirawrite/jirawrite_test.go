package jirawrite_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiracloud"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jirawrite"
)

func TestNarrowJQLNeverWidens(t *testing.T) {
	keys := []string{"SUP", "OPS"}
	for in, want := range map[string]string{
		"status = Done":                          `(status = Done) AND project in ("SUP", "OPS")`,
		"status = Done ORDER BY key DESC":        `(status = Done) AND project in ("SUP", "OPS") ORDER BY key DESC`,
		"project = DEV OR assignee = x":          `(project = DEV OR assignee = x) AND project in ("SUP", "OPS")`,
		`summary = "a ) OR (x" order by updated`: `(summary = "a ) OR (x") AND project in ("SUP", "OPS") order by updated`,
		"ORDER BY created":                       `project in ("SUP", "OPS") ORDER BY created`,
	} {
		got, err := jirawrite.NarrowJQL(in, keys)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{
		"status = Done) OR (project = DEV",
		"x = 1 ORDER BY key) OR (project = DEV",
		`summary = "open`,
		"(status = Done",
		"status = Done ORDER BY key, (x)",
	} {
		_, err := jirawrite.NarrowJQL(in, keys)
		require.ErrorIs(t, err, connector.ErrInvalidInput, in)
	}
	got, err := jirawrite.NarrowJQL("status = Done", nil)
	require.NoError(t, err)
	require.Equal(t, "status = Done", got, "no filter, no change")
}

type staticClients struct{ hc *http.Client }

func (s staticClients) HTTPClient(context.Context, *store.Connection) (*http.Client, error) {
	return s.hc, nil
}

func simWriter(t *testing.T) (*jirasim.Server, *jirawrite.Writer) {
	sim, w, _ := simWriterClient(t)
	return sim, w
}

// simWriterClient is simWriter with the authenticated client it uses.
func simWriterClient(t *testing.T, scopes ...string) (*jirasim.Server, *jirawrite.Writer, *http.Client) {
	t.Helper()
	sim := jirasim.NewTestServer(t, jirasim.Options{Seed: 4, Projects: 2, IssuesPerProject: 3})
	ep := jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()}
	cfg := jiracloud.OAuthConfig(ep, sim.ClientID(), sim.ClientSecret(), "https://app.example.com/cb")
	if scopes != nil {
		cfg.Scopes = scopes
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(jiracloud.AuthCodeURL(cfg, "s"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(context.Background(), loc.Query().Get("code"))
	require.NoError(t, err)
	hc := cfg.Client(context.Background(), tok)
	return sim, jirawrite.New(jirawrite.Config{Endpoints: ep}, staticClients{hc}), hc
}

func ptr[T any](v T) *T { return &v }

func TestPriorityGoesBackThroughTheMapping(t *testing.T) {
	sim, w := simWriter(t)
	ctx := context.Background()
	conn := &store.Connection{ID: "c1", CloudID: sim.Default().ID(), SiteURL: sim.Default().Info().URL}
	project := sim.Default().ProjectKeys()[0]
	// The site's own names by keyword: CRITICAL is Highest (the first of
	// the site's priorities that maps to it).
	res, err := w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: project,
		TicketFields: connector.TicketFields{Name: ptr("p"), Priority: ptr(itsm.PriorityCritical)}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"priority":{`)
	require.Contains(t, string(res.Records[0].Body), `"name":"Highest"`)

	// A custom mapping wins, reversed.
	conn.Options.PriorityMapping = store.NameMap[itsm.Priority]{{Name: "Low", Value: itsm.PriorityCritical}}
	res, err = w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: project,
		TicketFields: connector.TicketFields{Name: ptr("p"), Priority: ptr(itsm.PriorityCritical)}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"name":"Low"`)

	_, err = w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: project,
		TicketFields: connector.TicketFields{Name: ptr("p"), Priority: ptr(itsm.PriorityUnknown)}})
	require.ErrorIs(t, err, connector.ErrInvalidInput)
}

func TestStatusGoesThroughTheWorkflow(t *testing.T) {
	sim, w := simWriter(t)
	ctx := context.Background()
	conn := &store.Connection{ID: "c1", CloudID: sim.Default().ID()}
	res, err := w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: sim.Default().ProjectKeys()[0],
		TicketFields: connector.TicketFields{Name: ptr("wf")}})
	require.NoError(t, err)
	require.Equal(t, itsm.KindTicket, res.Records[0].Kind)
	issueID := vendorID(t, res.Records[0].Body)

	_, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: issueID}, connector.TicketChange{Status: ptr(itsm.StatusClosed)})
	var ue *connector.UnreachableError
	require.True(t, errors.As(err, &ue), "%v", err)
	require.Contains(t, ue.Reachable, itsm.StatusInProgress)
	require.NotContains(t, ue.Reachable, itsm.StatusClosed)

	res, err = w.UpdateTicket(ctx, conn, connector.TicketRef{ID: issueID}, connector.TicketChange{Status: ptr(itsm.StatusInProgress),
		TicketFields: connector.TicketFields{Name: ptr("wf 2")}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"summary":"wf 2"`)
	require.Contains(t, string(res.Records[0].Body), `"name":"In Progress"`)
}

func vendorID(t *testing.T, body []byte) string {
	t.Helper()
	var is struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &is))
	return is.ID
}

// Writes and passthrough calls are paced like a sync's: a 429 is waited out
// (Retry-After) and the call repeated, once the site lets it through.
func TestRateLimitedCallsAreRetried(t *testing.T) {
	sim, w := simWriter(t)
	ctx := context.Background()
	conn := &store.Connection{ID: "c1", CloudID: sim.Default().ID()}
	sim.SetRateLimit(&jirasim.RateLimit{EveryNth: 3, RetryAfter: jirasim.Duration(time.Second)})
	start := time.Now()
	res, err := w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: sim.Default().ProjectKeys()[0],
		TicketFields: connector.TicketFields{Name: ptr("paced"), Priority: ptr(itsm.PriorityLow)}})
	require.NoError(t, err)
	require.Contains(t, string(res.Records[0].Body), `"summary":"paced"`)
	require.Greater(t, time.Since(start), time.Second, "Retry-After was honoured")

	resp, err := w.Passthrough(ctx, conn, passthrough.Request{Method: "GET", Path: "myself"}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	resp, err = w.Passthrough(ctx, conn, passthrough.Request{Method: "GET", Path: "myself"}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)

	// Refused every time: the vendor's 429 comes back as it is.
	sim.SetRateLimit(&jirasim.RateLimit{EveryNth: 1, RetryAfter: jirasim.Duration(time.Second)})
	resp, err = w.Passthrough(ctx, conn, passthrough.Request{Method: "GET", Path: "myself"}, passthrough.Limits{})
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.Status)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	_, err = w.CreateTicket(ctx, conn, connector.NewTicket{ProjectKey: sim.Default().ProjectKeys()[0],
		TicketFields: connector.TicketFields{Name: ptr("never")}})
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusTooManyRequests, ve.Status)
}

// failReads makes every issue read fail as Jira's 404 would, after writes
// went through: a fault between the write and its read-back.
type failReads struct{ base http.RoundTripper }

func (f failReads) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/rest/api/3/issue/") {
		body := `{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`
		return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	return f.base.RoundTrip(r)
}

// A create whose read-back fails is reported as written (with the ticket's
// id), never as a refusal that a caller might retry into a duplicate.
func TestCreateNotReadBackIsNotARefusal(t *testing.T) {
	sim, _, authed := simWriterClient(t)
	hc := *authed
	hc.Transport = failReads{hc.Transport}
	w := jirawrite.New(jirawrite.Config{Endpoints: jiracloud.Endpoints{AuthURL: sim.URL(), APIURL: sim.URL()}}, staticClients{&hc})
	conn := &store.Connection{ID: "c1", CloudID: sim.Default().ID()}
	_, err := w.CreateTicket(context.Background(), conn, connector.NewTicket{ProjectKey: sim.Default().ProjectKeys()[0],
		TicketFields: connector.TicketFields{Name: ptr("written")}})
	var unread *connector.UnreadError
	require.True(t, errors.As(err, &unread), "%v", err)
	var ve *connector.VendorError
	require.False(t, errors.As(err, &ve), "the read's 404 does not pass for a refusal of the create")
	require.Equal(t, itsm.KindTicket, unread.Kind)
	require.NotEmpty(t, unread.ID)
}

// A grant without write:jira-work: Jira's 403 is a refusal the caller sees.
func TestMissingWriteScopeIsARefusal(t *testing.T) {
	sim, w, _ := simWriterClient(t, "read:jira-work", "read:jira-user", "offline_access")
	conn := &store.Connection{ID: "c1", CloudID: sim.Default().ID()}
	_, err := w.CreateTicket(context.Background(), conn, connector.NewTicket{ProjectKey: sim.Default().ProjectKeys()[0],
		TicketFields: connector.TicketFields{Name: ptr("x")}})
	var ve *connector.VendorError
	require.True(t, errors.As(err, &ve), "%v", err)
	require.Equal(t, http.StatusForbidden, ve.Status)
}
