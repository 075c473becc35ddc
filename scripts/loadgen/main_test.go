package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCLIAgainstThePlatform runs the command as an operator would, with
// duplicates, reordering and the probe, against the whole platform.
func TestCLIAgainstThePlatform(t *testing.T) {
	env := startPlatform(t)
	defer env.stop(t)
	var out, errOut bytes.Buffer
	code := run([]string{"-url", env.url, "-conn", "conn-1", "-site", benchSite, "-rate", "200", "-n", "300",
		"-concurrency", "8", "-issues", "5", "-dup-prob", "0.1", "-reorder-window", "16", "-probe", env.natsURL}, &out, &errOut)
	t.Log("\n" + out.String())
	require.Zero(t, code, errOut.String())
	for _, want := range []string{"req/s", "p50", "p99", "status:  202×", "errors: none", "0 final versions missing", "e2e latency p50"} {
		require.Contains(t, out.String(), want)
	}
}

func TestCLIRefusesRemoteTargets(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run([]string{"-url", "http://203.0.113.7:8080", "-conn", "c"}, &out, &errOut))
	require.True(t, strings.Contains(errOut.String(), "only loopback"), errOut.String())
	require.Equal(t, 2, run([]string{"-url", "http://127.0.0.1:1", "-conn", "c", "-probe", "nats://198.51.100.1:4222"}, &out, &errOut))
	require.Contains(t, errOut.String(), "only loopback")
}
