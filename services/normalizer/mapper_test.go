package normalizer

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// A normalizer without mappers would dead-letter everything: it is refused.
func TestNewNeedsMappers(t *testing.T) {
	e := newEnv(t)
	_, err := New(Config{}, e.js, e.st, zap.NewNop(), prometheus.NewRegistry())
	require.ErrorContains(t, err, "no vendor mappers")
}

// Records of a vendor no mapper maps are dead-lettered at once with the
// vendor named, and do not hold back the vendors that are mapped.
func TestUnknownVendorIsDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 1, LiveWorkers: 1, MaxDeliver: 5}, nil, nil)

	msg := nats.NewMsg(broker.RawSubject("servicenow", testConn, broker.SourceWebhook))
	msg.Header = e.headers()
	msg.Data = []byte(`{"sys_id":"1"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.nextMsgID()))
	require.NoError(t, err)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	e.publishWebhook(issueBody(t, "700", t0, "mapped"))
	e.waitIdle(10 * time.Second)

	e.get(itsm.KindTicket, ticketID("700"))
	entries := e.dlqEntries()
	require.Len(t, entries, 1)
	d := entries[0]
	require.Equal(t, 1, d.Deliveries, "an unknown vendor is not retried")
	require.Equal(t, `no mapper for vendor "servicenow"`, d.Error)
	require.Equal(t, msg.Subject, d.OriginalSubject)
}

// The RAW subject's vendor token picks the mapper. Two tokens get the real
// Jira mapping, each behind a counter: every record goes to its own token's.
func TestMapperPickedByVendorToken(t *testing.T) {
	e := newEnv(t)
	jiraM, other := &countingMapper{Mapper: jira.Mapper{}}, &countingMapper{Mapper: jira.Mapper{}}
	e.start(Config{Workers: 1, LiveWorkers: 1, Mappers: map[string]Mapper{"jira": jiraM, "other": other}}, nil, nil)

	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		msg := nats.NewMsg(broker.RawSubject("other", testConn, broker.SourceWebhook))
		msg.Header = e.headers()
		msg.Data = issueBody(t, strconv.Itoa(710+i), t0, "other")
		_, err := e.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(e.nextMsgID()))
		require.NoError(t, err)
	}
	e.publishWebhook(issueBody(t, "701", t0, "jira"))
	e.waitIdle(10 * time.Second)

	require.Equal(t, int64(3), other.webhooks.Load())
	require.Equal(t, int64(1), jiraM.webhooks.Load())
	for _, id := range []string{"701", "710", "711", "712"} {
		e.get(itsm.KindTicket, ticketID(id))
	}
	require.Empty(t, e.dlqEntries())
}

// countingMapper counts the webhooks a real Mapper maps.
type countingMapper struct {
	Mapper
	webhooks atomic.Int64
}

func (c *countingMapper) MapWebhook(conn *store.Connection, body []byte) ([]itsm.Record, error) {
	c.webhooks.Add(1)
	return c.Mapper.MapWebhook(conn, body)
}

// A connection of a vendor no mapper maps is left for a process that maps
// it: the other connections are still re-mapped.
func TestRemapSkipsConnectionsOfUnmappedVendors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	old := time.Now().UTC().Add(-time.Minute)
	sn := &store.Connection{ID: "conn-0", OrganizationID: testOrg, Vendor: "SERVICENOW", State: store.StateActive,
		RefreshIntervalSecs: 21600, TimeoutSecs: 1800, CreatedAt: old, UpdatedAt: old}
	sn.Detail.MappingRevision = 1
	require.NoError(t, e.st.CreateConnection(ctx, sn))
	c, err := e.st.LookupConnection(ctx, testConn)
	require.NoError(t, err)
	c.Detail.MappingRevision++
	c.UpdatedAt = old
	require.NoError(t, e.st.UpdateConnection(ctx, c))

	e.start(Config{RemapEvery: 20 * time.Millisecond, ConnectionTTL: time.Millisecond}, nil, nil)
	require.Eventually(t, func() bool {
		c, err := e.st.LookupConnection(ctx, testConn)
		return err == nil && c.Detail.RemappedRevision == c.Detail.MappingRevision
	}, 10*time.Second, 20*time.Millisecond)
	sn, err = e.st.LookupConnection(ctx, sn.ID)
	require.NoError(t, err)
	require.Zero(t, sn.Detail.RemappedRevision, "no mapper re-mapped it")
}
