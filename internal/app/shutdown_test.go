package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/app/apptest"
	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/pkg/itsm"
)

// withIssue turns the fixture into issue n: its own id and key.
func withIssue(t *testing.T, body []byte, n int) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	issue := m["issue"].(map[string]any)
	issue["id"] = fmt.Sprint(20000 + n)
	issue["key"] = fmt.Sprintf("TEST-%d", 1000+n)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// TestNothingAcceptedIsLostAcrossRestart posts deliveries concurrently while
// the platform shuts down (as on SIGTERM), restarts it on the same data, and
// checks that every delivery answered 202 became a ticket.
func TestNothingAcceptedIsLostAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	configure := func(c *config.Config) {
		c.APIKeys = map[string]string{keyA: "org-a"}
		c.DataDir, c.Store = dir, filepath.Join(dir, "itsm.db")
	}
	env := apptest.StartWith(t, configure)
	env.AddConnection(t, "conn-1", "org-a", "https://zulipp.atlassian.net")
	fixture := apptest.Fixture(t, "webhooks/issue_updated_status_change_01.json")

	const n = 300
	var mu sync.Mutex
	accepted := map[int]bool{}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				status, _ := postQuiet(env, "conn-1", fmt.Sprintf("d-%d", i), withIssue(t, fixture, i))
				if status == http.StatusAccepted {
					mu.Lock()
					accepted[i] = true
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if i == n/3 {
			// Stop while requests are in flight; the rest are refused or fail.
			go env.Stop(t)
		}
		next <- i
	}
	close(next)
	wg.Wait()
	env.Stop(t)
	require.NotEmpty(t, accepted)
	t.Logf("%d of %d deliveries were accepted before the shutdown", len(accepted), n)

	again := apptest.StartWith(t, configure)
	// Messages the server had already sent for a pending pull request when
	// the normalizer drained never reached it: JetStream redelivers them once
	// the consumer's AckWait (30 s) passes. They are late, never lost.
	deadline := 45 * time.Second
	for i := range accepted {
		id := itsm.ObjectID("conn-1", itsm.KindTicket, fmt.Sprint(20000+i))
		apptest.Eventually(t, deadline, "accepted delivery "+fmt.Sprint(i)+" stored", func() bool {
			return again.GetJSON(t, keyA, "/v1/itsm/tickets/"+id, nil) == http.StatusOK
		})
	}
}

// postQuiet is PostWebhook that reports transport errors as status 0: after
// the shutdown starts, refused connections are expected.
func postQuiet(env *apptest.Env, connID, deliveryID string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, env.URL+"/webhooks/jira/"+connID, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", apptest.SignQuiet(env.Config.JiraClientSecret, time.Now().Add(time.Minute)))
	req.Header.Set("X-Atlassian-Webhook-Identifier", deliveryID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
