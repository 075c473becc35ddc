package normalizer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
)

// flakyJS is the real JetStream with failures injected into chosen
// publishes: either before the message reaches the stream, or after it
// landed with the PubAck lost (as when the process dies at that moment).
type flakyJS struct {
	jetstream.JetStream
	mu   sync.Mutex
	fail func(msg *nats.Msg) (fail, afterLanding bool)
}

var errPublish = errors.New("injected publish failure")

func (f *flakyJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	f.mu.Lock()
	decide := f.fail
	f.mu.Unlock()
	if decide != nil {
		if fail, after := decide(msg); fail {
			if after {
				if _, err := f.JetStream.PublishMsg(ctx, msg, opts...); err != nil {
					return nil, err
				}
			}
			return nil, errPublish
		}
	}
	return f.JetStream.PublishMsg(ctx, msg, opts...)
}

// failFirst fails the n-th publish (1-based) matching match.
func failFirst(match func(*nats.Msg) bool, after bool) func(*nats.Msg) (bool, bool) {
	var seen atomic.Int32
	return func(m *nats.Msg) (bool, bool) {
		if match(m) && seen.Add(1) == 1 {
			return true, after
		}
		return false, false
	}
}

func isEvent(m *nats.Msg) bool { return strings.HasPrefix(m.Subject, "itsm.") }

func TestThousandEventsWithDuplicatesAndReordering(t *testing.T) {
	for _, cache := range []int{0, 4096} {
		t.Run(fmt.Sprintf("cache=%d", cache), func(t *testing.T) { thousandEvents(t, cache) })
	}
}

func thousandEvents(t *testing.T, cache int) {
	const (
		issues     = 50
		versions   = 16 // per issue: 800 distinct versions
		duplicates = 200
	)
	rng := rand.New(rand.NewPCG(20240501, uint64(cache)))
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	type msg struct {
		issue, version int
		body           []byte
	}
	var msgs []msg
	for i := range issues {
		for v := range versions {
			at := t0.Add(time.Duration(v)*time.Minute + time.Duration(i)*time.Millisecond)
			msgs = append(msgs, msg{i, v, issueBody(t, strconv.Itoa(1000+i), at, fmt.Sprintf("issue %d version %d", i, v))})
		}
	}
	// Duplicates: the same body delivered again under another id, as when a
	// webhook and a sync race or Jira retries after the dedupe window.
	for range duplicates {
		msgs = append(msgs, msgs[rng.IntN(issues*versions)])
	}
	rng.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	require.Len(t, msgs, 1000)

	e := newEnv(t)
	e.start(Config{Workers: 8, CacheEntries: cache}, nil, nil)
	subj := broker.RawSubject("jira", testConn, broker.SourceWebhook)
	for i, m := range msgs {
		out := nats.NewMsg(subj)
		out.Header, out.Data = e.headers(), m.body
		_, err := e.js.PublishMsgAsync(out, jetstream.WithMsgID(fmt.Sprintf("delivery-%d", i)))
		require.NoError(t, err)
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("RAW did not acknowledge the messages")
	}
	e.waitIdle(30 * time.Second)

	// The store holds exactly the latest version of every issue.
	latest := func(i int) int64 {
		return t0.Add(time.Duration(versions-1)*time.Minute + time.Duration(i)*time.Millisecond).UnixMilli()
	}
	for i := range issues {
		doc := e.get(itsm.KindTicket, ticketID(strconv.Itoa(1000+i)))
		require.Equal(t, latest(i), doc.Version, "issue %d", i)
		require.Contains(t, string(doc.Body), fmt.Sprintf(`"name":"issue %d version %d"`, i, versions-1))
	}

	// At most one event per version: every Nats-Msg-Id once.
	evs := e.events()
	seen := map[string]bool{}
	perIssue := map[string][]event{}
	for _, ev := range evs {
		require.False(t, seen[ev.msgID], "two events for %s", ev.msgID)
		seen[ev.msgID] = true
		require.Equal(t, ev.objectID()+":"+ev.Version, ev.msgID)
		perIssue[ev.objectID()] = append(perIssue[ev.objectID()], ev)
	}
	// Exactly one per version that was the newest when it was processed:
	// every message that wrote published once, and nothing else did.
	require.Equal(t, e.metric("written"), float64(len(evs)))
	require.Equal(t, float64(len(msgs)), e.metric("written")+e.metric("unchanged"))
	require.Zero(t, e.metric("retried"))
	require.Empty(t, e.dlqEntries())

	t.Logf("%d messages: %v wrote (one event each), %v were not newer", len(msgs), e.metric("written"), e.metric("unchanged"))
	require.Len(t, perIssue, issues)
	for i := range issues {
		id := ticketID(strconv.Itoa(1000 + i))
		list := perIssue[id]
		require.NotEmpty(t, list)
		// Per object, events leave in version order, so the last one a
		// subscriber sees is the stored state.
		for k, ev := range list {
			v, err := strconv.ParseInt(ev.Version, 10, 64)
			require.NoError(t, err)
			if k == 0 {
				require.Equal(t, itsm.ChangeCreated, ev.Change)
				require.Empty(t, ev.ChangedFields)
				continue
			}
			prev, _ := strconv.ParseInt(list[k-1].Version, 10, 64)
			require.Greater(t, v, prev, "issue %d: events out of version order", i)
			require.Equal(t, itsm.ChangeUpdated, ev.Change)
			require.Equal(t, []string{"name"}, ev.ChangedFields, "only the summary differs between versions")
		}
		last := list[len(list)-1]
		require.Equal(t, strconv.FormatInt(latest(i), 10), last.Version)
		require.JSONEq(t, string(e.get(itsm.KindTicket, id).Body), string(last.Ticket))
	}
}

func TestRedeliveryPublishesExactlyOneEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after bool
	}{
		{"ack lost after the event landed", true},
		{"publish failed before the event landed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			fj := &flakyJS{JetStream: e.js, fail: failFirst(isEvent, tc.after)}
			e.start(Config{Workers: 2, CacheEntries: 128}, nil, fj)
			t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

			e.publishWebhook(issueBody(t, "800", t0, "v1"))
			e.waitIdle(10 * time.Second)
			require.Equal(t, 1.0, e.metric("retried"), "the failed publish sends the message back")
			evs := e.events()
			require.Len(t, evs, 1, "the redelivery publishes the written version once")
			require.Equal(t, itsm.ChangeCreated, evs[0].Change)
			id := ticketID("800")
			require.Equal(t, itsm.EventMsgID(id, t0.UnixMilli()), evs[0].msgID)

			// Later versions go on as usual.
			e.publishWebhook(issueBody(t, "800", t0.Add(time.Minute), "v2"))
			e.waitIdle(10 * time.Second)
			evs = e.events()
			require.Len(t, evs, 2)
			require.Equal(t, itsm.ChangeUpdated, evs[1].Change)
			require.Equal(t, []string{"name"}, evs[1].ChangedFields)
			require.Equal(t, e.get(itsm.KindTicket, id).Version, t0.Add(time.Minute).UnixMilli())
		})
	}
}
