package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

// syncBuffer is written by the server goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan []string, 1)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-seed", "7", "-incidents", "9", "-instances", "2", "-rate-per-hour", "50"}, &out,
			func(a []string) { addrc <- a })
	}()
	var addrs []string
	select {
	case addrs = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	require.Len(t, addrs, 2)
	require.NotEqual(t, addrs[0], addrs[1])
	for i, a := range addrs {
		resp, err := http.Get("http://" + a + "/_sim/info")
		require.NoError(t, err)
		var info struct {
			Name   string         `json:"name"`
			Seed   int64          `json:"seed"`
			Counts map[string]int `json:"counts"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
		resp.Body.Close()
		require.EqualValues(t, 7, info.Seed)
		require.Equal(t, 9, info.Counts["incident"])
		require.Equal(t, []string{"dev10001", "dev10002"}[i], info.Name)
	}
	req, _ := http.NewRequest("GET", "http://"+addrs[0]+"/api/now/table/incident?sysparm_limit=1", nil)
	req.SetBasicAuth("itsm.integration", "integration-password")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "50", resp.Header.Get("X-RateLimit-Limit"))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	require.Contains(t, out.String(), "snsim stopped")
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out syncBuffer
	require.Error(t, run(context.Background(), []string{"-nope"}, &out, nil))
	require.Error(t, run(context.Background(), []string{"-instances", "0"}, &out, nil))
	require.Error(t, run(context.Background(), []string{"-push-url", "http://x"}, &out, nil))
	require.Error(t, run(context.Background(), []string{"-addr", "nope"}, &out, nil))
	require.NoError(t, run(context.Background(), []string{"-h"}, &out, nil), "help is not an error")
	require.Contains(t, out.String(), "-rate-per-hour")
}
