package snsim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

var testStart = time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)

// testSim starts a simulator on a manual clock; mod adjusts the options.
func testSim(t *testing.T, mod func(*Options)) (*Server, *ManualClock) {
	t.Helper()
	clk := NewManualClock(testStart)
	o := Options{Seed: 42, Clock: clk}
	if mod != nil {
		mod(&o)
	}
	return NewTestServer(t, o), clk
}

// cred is a basic-auth account or a bearer token.
type cred struct{ user, pass, bearer string }

var (
	asAdmin  = cred{user: "admin", pass: "admin-password"}
	asITIL   = cred{user: "itsm.integration", pass: "integration-password"}
	asNoRole = cred{user: "no.roles", pass: "no-roles-password"}
)

type resp struct {
	status int
	header http.Header
	body   []byte
}

// call GETs a path of the first instance.
func call(t *testing.T, s *Server, c cred, path string) resp {
	t.Helper()
	return callURL(t, c, s.BaseURL("")+path)
}

func callURL(t *testing.T, c cred, u string) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	} else if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{res.StatusCode, res.Header, b}
}

type listBody struct {
	Result []map[string]any `json:"result"`
}

// list GETs a Table API list and requires 200.
func list(t *testing.T, s *Server, c cred, path string) ([]map[string]any, http.Header) {
	t.Helper()
	r := call(t, s, c, path)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var lb listBody
	require.NoError(t, json.Unmarshal(r.body, &lb), string(r.body))
	return lb.Result, r.header
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	return v
}

func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitIdle(ctx))
}

// receiver records pushes.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), b})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}
