package dlq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/broker/brokertest"
	"github.com/itsmhub/itsm/pkg/dlq"
)

func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	return brokertest.Start(t).JetStream()
}

// deadLetter does what the normalizer does with a message that failed for
// good: the original as RAW stored it, then its DLQ copy.
func deadLetter(t *testing.T, js jetstream.JetStream, conn, body string, cause error) (rawSeq, dlqSeq uint64) {
	t.Helper()
	ctx := context.Background()
	orig := nats.NewMsg(broker.RawSubject("jira", conn, broker.SourceWebhook))
	orig.Data = []byte(body)
	orig.Header.Set("Itsm-Organization-Id", "org-a")
	orig.Header.Set("Itsm-Connection-Id", conn)
	orig.Header.Set("Itsm-Vendor", "JIRA")
	orig.Header.Set("X-Atlassian-Webhook-Retry", "2")
	msgID := conn + ":delivery-" + body
	ack, err := js.PublishMsg(ctx, orig, jetstream.WithMsgID(msgID))
	require.NoError(t, err)
	raw, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	stored, err := raw.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, msgID, stored.Header.Get(jetstream.MsgIDHeader))

	out := dlq.Message(stored.Subject, stored.Header, stored.Data, stored.Sequence, 5, cause)
	dack, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(dlq.MsgID(stored.Sequence)))
	require.NoError(t, err)
	// A second dead-lettering of the same RAW message (the normalizer died
	// before acking it) is dropped.
	again, err := js.PublishMsg(ctx, dlq.Message(stored.Subject, stored.Header, stored.Data, stored.Sequence, 6, cause),
		jetstream.WithMsgID(dlq.MsgID(stored.Sequence)))
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	return ack.Sequence, dack.Sequence
}

func rawMessages(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, broker.StreamRaw)
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		require.NoError(t, err)
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func TestListFiltersAndPages(t *testing.T) {
	js := startJS(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	_, s1 := deadLetter(t, js, "conn-1", "a", errors.New("jira: not a webhook event: no webhookEvent and no issue"))
	rawSeq2, s2 := deadLetter(t, js, "conn-2", "b", errors.New("write ticket: database is locked"))
	_, s3 := deadLetter(t, js, "conn-1", "c", errors.New("line one\r\nline two"))

	all, err := dlq.List(ctx, js, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, []uint64{s1, s2, s3}, []uint64{all[0].Seq, all[1].Seq, all[2].Seq})
	e := all[1]
	require.Equal(t, "dlq.raw.jira.conn-2.webhook", e.Subject)
	require.Equal(t, "raw.jira.conn-2.webhook", e.OriginalSubject)
	require.Equal(t, "write ticket: database is locked", e.Error)
	require.Equal(t, 5, e.Deliveries)
	require.True(t, e.Time.After(before))
	require.Equal(t, []byte("b"), e.Data)
	require.Equal(t, "org-a", e.Headers.Get("Itsm-Organization-Id"))
	require.Equal(t, "2", e.Headers.Get("X-Atlassian-Webhook-Retry"))
	require.Equal(t, "conn-2:delivery-b", e.Headers.Get(dlq.HeaderOriginalMsgID))
	require.Equal(t, fmt.Sprint(rawSeq2), e.Headers.Get(dlq.HeaderOriginalSeq))
	require.Equal(t, "line one  line two", all[2].Error, "a header value stays on one line")

	conn1, err := dlq.List(ctx, js, dlq.Filter{Subject: "raw.jira.conn-1.>"}, 0)
	require.NoError(t, err)
	require.Len(t, conn1, 2)
	byHeader, err := dlq.List(ctx, js, dlq.Filter{ConnectionID: "conn-2"}, 0)
	require.NoError(t, err)
	require.Len(t, byHeader, 1)
	require.Equal(t, s2, byHeader[0].Seq)

	page, err := dlq.List(ctx, js, dlq.Filter{}, 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	rest, err := dlq.List(ctx, js, dlq.Filter{StartSeq: page[1].Seq + 1}, 2)
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Equal(t, s3, rest[0].Seq)
}

func TestReplayRepublishesAndDeletes(t *testing.T) {
	js := startJS(t)
	ctx := context.Background()
	_, s1 := deadLetter(t, js, "conn-1", "a", errors.New("boom"))
	_, s2 := deadLetter(t, js, "conn-2", "b", errors.New("boom"))
	_, s3 := deadLetter(t, js, "conn-1", "c", errors.New("boom"))
	require.Len(t, rawMessages(t, js), 3)

	n, err := dlq.Replay(ctx, js, []uint64{s2})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	raws := rawMessages(t, js)
	require.Len(t, raws, 4, "the replay is not taken for a duplicate of the original")
	r := raws[3]
	require.Equal(t, "raw.jira.conn-2.webhook", r.Subject)
	require.Equal(t, []byte("b"), r.Data)
	for _, h := range []string{"Itsm-Organization-Id", "Itsm-Connection-Id", "Itsm-Vendor", "X-Atlassian-Webhook-Retry"} {
		require.Equal(t, raws[1].Header.Get(h), r.Header.Get(h), h)
	}
	for _, h := range []string{dlq.HeaderError, dlq.HeaderOriginalSubject, dlq.HeaderDeliveries, dlq.HeaderOriginalMsgID, dlq.HeaderOriginalSeq} {
		require.Empty(t, r.Header.Get(h), h)
	}
	require.Equal(t, fmt.Sprint(s2), r.Header.Get(dlq.HeaderReplayedFrom))
	require.NotEmpty(t, r.Header.Get(jetstream.MsgIDHeader))
	require.NotEqual(t, raws[1].Header.Get(jetstream.MsgIDHeader), r.Header.Get(jetstream.MsgIDHeader))

	left, err := dlq.List(ctx, js, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Equal(t, []uint64{s1, s3}, []uint64{left[0].Seq, left[1].Seq})

	// Replaying an entry that is gone is an error, not a silent no-op.
	n, err = dlq.Replay(ctx, js, []uint64{s2})
	require.Error(t, err)
	require.Zero(t, n)

	// A replay cut short between publish and delete, replayed again,
	// reaches RAW once.
	dup, err := js.PublishMsg(ctx, dlq.ReplayMessage(left[0]))
	require.NoError(t, err)
	require.False(t, dup.Duplicate)
	n, err = dlq.ReplayAll(ctx, js, dlq.Filter{Subject: "raw.jira.conn-1.>"})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Len(t, rawMessages(t, js), 6, "4 + the interrupted replay + the other entry")
	left, err = dlq.List(ctx, js, dlq.Filter{}, 0)
	require.NoError(t, err)
	require.Empty(t, left)
}

func TestMessageBoundsTheErrorHeader(t *testing.T) {
	long := strings.Repeat("é", 2000)
	m := dlq.Message("raw.jira.c.webhook", nats.Header{"Nats-Msg-Id": {"x"}, "Nats-Expected-Stream": {"RAW"}}, nil, 7, 1, errors.New(long))
	v := m.Header.Get(dlq.HeaderError)
	require.LessOrEqual(t, len(v), 1024+len("…"))
	require.True(t, strings.HasSuffix(v, "…"))
	require.True(t, strings.HasPrefix(long, strings.TrimSuffix(v, "…")), "cut on a rune boundary")
	require.Empty(t, m.Header.Get("Nats-Expected-Stream"), "JetStream's own headers are not copied")
	require.Equal(t, "x", m.Header.Get(dlq.HeaderOriginalMsgID))
	require.Equal(t, "unknown error", dlq.Message("s", nats.Header{}, nil, 1, 1, nil).Header.Get(dlq.HeaderError))
}

// A DLQ copy must fit NATS's max_payload whatever the original carried, or
// the poison would be redelivered forever.
func TestMessageAlwaysFitsMaxPayload(t *testing.T) {
	size := func(m *nats.Msg) int {
		n := len("NATS/1.0\r\n\r\n") + len(m.Data)
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		return n
	}
	hdr := nats.Header{"Nats-Msg-Id": {strings.Repeat("i", 200_000)}, "X-Atlassian-Webhook-Retry": {strings.Repeat("r", 100_000)}}

	// The largest body the receiver accepts is kept whole.
	body := make([]byte, broker.MaxRecord)
	m := dlq.Message("raw.jira.c.webhook", hdr, body, 7, 1, errors.New(strings.Repeat("e", 10_000)))
	require.Equal(t, body, m.Data)
	require.Empty(t, m.Header.Get(dlq.HeaderTruncated))
	require.LessOrEqual(t, len(m.Header.Get(dlq.HeaderOriginalMsgID)), 1024+len("…"), "copied headers are bounded")
	require.LessOrEqual(t, len(m.Header.Get("X-Atlassian-Webhook-Retry")), 1024+len("…"))

	// A message as large as NATS takes is cut to fit, and says so.
	body = make([]byte, broker.MaxPayload)
	m = dlq.Message("raw.jira.c.webhook", hdr, body, 7, 1, errors.New("bad"))
	require.LessOrEqual(t, size(m), broker.MaxPayload)
	require.Equal(t, strconv.Itoa(broker.MaxPayload), m.Header.Get(dlq.HeaderTruncated))
	require.Greater(t, len(m.Data), broker.MaxRecord, "only what does not fit is cut")
}
