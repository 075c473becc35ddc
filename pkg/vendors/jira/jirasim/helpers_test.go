package jirasim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

var testStart = time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)

const allScopes = "read:jira-work write:jira-work read:jira-user manage:jira-configuration manage:jira-webhook offline_access"

// testSim starts a simulator on a manual clock with fast retries.
func testSim(t *testing.T, mod func(*Options)) (*Server, *ManualClock) {
	t.Helper()
	clk := NewManualClock(testStart)
	o := Options{Seed: 42, Clock: clk, RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
		DeliveryTimeout: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	return NewTestServer(t, o), clk
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

const testRedirect = "https://app.example.com/oauth/callback"

// authorize runs /authorize and returns the redirect location.
func authorize(t *testing.T, s *Server, extra url.Values) *url.URL {
	t.Helper()
	q := url.Values{"audience": {"api.atlassian.com"}, "client_id": {s.ClientID()}, "scope": {allScopes},
		"redirect_uri": {testRedirect}, "state": {"st-123"}, "response_type": {"code"}, "prompt": {"consent"}}
	for k, v := range extra {
		q[k] = v
	}
	resp, err := noRedirect().Get(s.AuthURL() + "?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	return loc
}

type tokenResp struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// tokenCall posts a JSON token request and returns status and raw body.
func tokenCall(t *testing.T, s *Server, body map[string]string) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.TokenURL(), "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// login runs the full 3LO flow and returns the tokens.
func login(t *testing.T, s *Server) tokenResp {
	t.Helper()
	loc := authorize(t, s, nil)
	status, raw := tokenCall(t, s, map[string]string{"grant_type": "authorization_code", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "code": loc.Query().Get("code"), "redirect_uri": testRedirect})
	require.Equal(t, http.StatusOK, status, string(raw))
	var tr tokenResp
	require.NoError(t, json.Unmarshal(raw, &tr))
	return tr
}

func refresh(t *testing.T, s *Server, rt string) (int, []byte) {
	t.Helper()
	return tokenCall(t, s, map[string]string{"grant_type": "refresh_token", "client_id": s.ClientID(),
		"client_secret": s.ClientSecret(), "refresh_token": rt})
}

// api calls the REST API of the first site. body may be nil.
func api(t *testing.T, s *Server, token, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	return apiSite(t, s, s.Sites()[0].ID, token, method, path, body)
}

func apiSite(t *testing.T, s *Server, cloudID, token, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.APIBase(cloudID)+"/rest/api/3/"+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, raw
}

// apiJSON calls the API, requires the status and decodes the body.
func apiJSON[T any](t *testing.T, s *Server, token, method, path string, body any, want int) T {
	t.Helper()
	status, _, raw := api(t, s, token, method, path, body)
	require.Equal(t, want, status, string(raw))
	var v T
	require.NoError(t, json.Unmarshal(raw, &v), string(raw))
	return v
}

// receiver records webhook deliveries; respond decides the status per
// request (nil = 200).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, r received) int
}

type received struct {
	Header http.Header
	Body   []byte
}

func (r received) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m))
	return m
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rec := received{Header: r.Header.Clone(), Body: b}
		rc.got = append(rc.got, rec)
		n, respond := len(rc.got), rc.respond
		rc.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(n, rec)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) setRespond(f func(n int, r received) int) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitIdle(ctx))
}

// register registers webhooks for url and returns the raw result list.
func register(t *testing.T, s *Server, token, hookURL string, items ...map[string]any) []map[string]any {
	t.Helper()
	res := apiJSON[struct {
		Results []map[string]any `json:"webhookRegistrationResult"`
	}](t, s, token, "POST", "webhook", map[string]any{"url": hookURL, "webhooks": items}, http.StatusOK)
	require.Len(t, res.Results, len(items))
	return res.Results
}

func hook(jql string, events ...string) map[string]any {
	return map[string]any{"events": events, "jqlFilter": jql}
}

func errorMessages(t *testing.T, raw []byte) string {
	t.Helper()
	var e struct {
		ErrorMessages []string `json:"errorMessages"`
	}
	require.NoError(t, json.Unmarshal(raw, &e), string(raw))
	require.NotEmpty(t, e.ErrorMessages, string(raw))
	return strings.Join(e.ErrorMessages, "; ")
}
