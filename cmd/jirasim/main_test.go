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
	addrc := make(chan string, 1)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-seed", "7", "-projects", "2", "-issues", "5", "-sites", "2"}, &out,
			func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	resp, err := http.Get("http://" + addr + "/_sim/info")
	require.NoError(t, err)
	var info struct {
		Seed  int64 `json:"seed"`
		Sites []struct {
			Projects []string `json:"projects"`
		} `json:"sites"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	resp.Body.Close()
	require.EqualValues(t, 7, info.Seed)
	require.Len(t, info.Sites, 2)
	require.Len(t, info.Sites[0].Projects, 2)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	require.Contains(t, out.String(), "jirasim stopped")
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out syncBuffer
	require.Error(t, run(context.Background(), []string{"-nope"}, &out, nil))
	require.Error(t, run(context.Background(), []string{"-sites", "0"}, &out, nil))
}
