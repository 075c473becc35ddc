package normalizer

import (
	"context"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
)

// publishWriteBack publishes a sync envelope on the webhook subject, marked
// as a write-back, as the receiver does after a write through the API.
func (e *env) publishWriteBack(sr SyncRecord) {
	e.t.Helper()
	b, err := json.Marshal(sr)
	require.NoError(e.t, err)
	msg := nats.NewMsg(broker.RawSubject("jira", testConn, broker.SourceWebhook))
	msg.Header = e.headers()
	msg.Header.Set(raw.HeaderWriteBack, "1")
	msg.Data = b
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = e.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.nextMsgID()))
	require.NoError(e.t, err)
}

func TestWriteBackRecordsMapLikeSyncRecordsButNeverReconcile(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 1, LiveWorkers: 1, MaxDeliver: 3}, nil, nil)
	issue := restPage(t, "rest/search_v3_epic_adf_airbyte_01.json", "issues")[0]
	var is struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(issue, &is))
	e.publishWriteBack(SyncRecord{Type: raw.TypeIssue, ObservedAt: time.Now(), SyncID: "forged", Record: issue})
	// A reconcile marker on the live lane would let the receiver's NATS user
	// tombstone a tenant's data: refused.
	e.publishWriteBack(SyncRecord{Type: SyncTypeReconcile, ObservedAt: time.Now(), SyncID: "forged", StartedAt: time.Now(),
		Kinds: []itsm.Kind{itsm.KindTicket}})
	e.waitIdle(10 * time.Second)

	doc := e.get(itsm.KindTicket, ticketID(is.ID))
	require.False(t, doc.Deleted)
	require.Empty(t, doc.SyncID, "a write-back belongs to no sync")
	entries := e.dlqEntries()
	require.Len(t, entries, 1)
	require.Contains(t, entries[0].Error, "never a reconcile marker")
	require.Len(t, e.events(), 1)
}
