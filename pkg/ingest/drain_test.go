package ingest_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/itsmhub/itsm/pkg/apikey"
	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/ingest"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
	"github.com/itsmhub/itsm/pkg/vendors/jira/jiraconn"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
	"github.com/itsmhub/itsm/services/normalizer"
	"github.com/itsmhub/itsm/services/receiver"
)

const (
	site   = "https://acme.atlassian.net"
	secret = "drain-test-client-secret"
)

// pipeline is the all-in-one process's ingest path sharing one gate: the
// receiver, embedded JetStream, the normalizer over SQLite, and a probe on
// the events the normalizer publishes once it has stored a change.
type pipeline struct {
	url   string
	probe *load.Probe
	raw   func() uint64 // RAW messages the live consumer was redelivered
}

func startPipeline(t *testing.T, g *ingest.Gate, ackWait time.Duration) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	br := brokertest.Start(t)
	js := br.JetStream()
	st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Now()
	require.NoError(t, st.CreateConnection(ctx, &store.Connection{ID: "conn-1", OrganizationID: "org-a", Vendor: jira.VendorName,
		State: store.StateActive, SiteURL: site, CreatedAt: now, UpdatedAt: now}))
	log := zaptest.NewLogger(t)
	jv, err := jiraconn.NewVerifier(jiraconn.VerifierConfig{ClientSecret: []byte(secret)})
	require.NoError(t, err)
	r, err := receiver.New(receiver.Config{Verifiers: map[string]receiver.DeliveryVerifier{jira.VendorName: jv}, Ingest: g},
		js, st, apikey.NewAuthenticator(st, nil), log.Named("receiver"), nil)
	require.NoError(t, err)
	n, err := normalizer.New(normalizer.Config{AckWait: ackWait, Yield: g,
		Mappers: map[string]normalizer.Mapper{broker.VendorToken(jira.VendorName): jira.Mapper{}}}.Embedded(),
		js, st, log.Named("normalizer"), prometheus.NewRegistry())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{}, 2)
	go func() { _ = r.Run(ctx, ln, 5*time.Second); done <- struct{}{} }()
	go func() { _ = n.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	probe, err := load.StartProbe(br.URLAs(broker.UserSubscriber))
	require.NoError(t, err)
	t.Cleanup(probe.Close)
	return &pipeline{url: "http://" + ln.Addr().String(), probe: probe, raw: func() uint64 {
		c, err := js.Consumer(ctx, broker.StreamRaw, normalizer.LiveConsumerName)
		require.NoError(t, err)
		info, err := c.Info(ctx)
		require.NoError(t, err)
		return uint64(info.NumRedelivered)
	}}
}

// send posts fresh issues for d and returns the keys of the accepted ones'
// events.
func (p *pipeline) send(t *testing.T, d time.Duration, seed int64) []string {
	t.Helper()
	res, err := load.Run(context.Background(), load.Config{URL: p.url, Conn: "conn-1", Secret: secret, Site: site,
		Concurrency: 4, Duration: d, Issues: 10_000_000, Seed: seed})
	require.NoError(t, err)
	sum := res.Summary()
	require.Equal(t, sum.Sent, sum.OK, "every delivery accepted: %v %v", sum.Status, sum.Errors)
	require.NotZero(t, sum.OK)
	var keys []string
	for k := range res.AcceptedVersions() {
		keys = append(keys, k)
	}
	return keys
}

// saturate holds n webhook requests in flight, as a burst would.
func saturate(g *ingest.Gate, n int) (release func()) {
	for range n {
		g.Begin()
	}
	return func() {
		for range n {
			g.End()
		}
	}
}

// While ingest is saturated the normalizer stores nothing; once the burst
// ends it stores everything that was accepted, with no message redelivered.
func TestHeldWorkDrainsOnceIngestIsFree(t *testing.T) {
	g := ingest.New(8, 8*time.Second)
	p := startPipeline(t, g, 30*time.Second)
	release := saturate(g, 20)
	held := time.Now()
	keys := p.send(t, time.Second, 1)
	// Still within the hold: not one event.
	require.Len(t, p.probe.WaitFor(keys, 300*time.Millisecond), len(keys), "the normalizer worked while ingest was saturated")
	require.Less(t, time.Since(held), 8*time.Second, "the check ran after the hold could have ended")
	require.NotZero(t, g.Yields())

	release()
	released := time.Now()
	require.Empty(t, p.probe.WaitFor(keys, time.Minute), "accepted deliveries without their event after the burst")
	t.Logf("%d deliveries stored %v after the burst ended", len(keys), time.Since(released).Round(time.Millisecond))
	require.Zero(t, p.raw(), "a held message was redelivered")
}

// A saturation that never ends still drains: each hold ends after MaxHold
// and the normalizer works through the relief, long before AckWait.
func TestLastingSaturationStillDrains(t *testing.T) {
	g := ingest.New(8, 400*time.Millisecond)
	p := startPipeline(t, g, 3*time.Second)
	release := saturate(g, 20)
	defer release()
	keys := p.send(t, time.Second, 2)
	require.Empty(t, p.probe.WaitFor(keys, time.Minute), "accepted deliveries without their event while ingest stayed saturated")
	require.True(t, g.Saturated())
	require.NotZero(t, g.Yields())
	require.Zero(t, p.raw(), "a held message was redelivered")
}
