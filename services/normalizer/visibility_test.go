package normalizer

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// TestReconcileHidesUnseenOfHiddenKinds: a marker's Hidden kinds keep what
// the sync did not see, marked "no longer visible" with its status, and
// the next copy of it makes it visible again even at an older version.
func TestReconcileHidesUnseenOfHiddenKinds(t *testing.T) {
	e := newEnv(t)
	e.start(Config{Workers: 4, CacheEntries: 128}, nil, nil)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"1", "2"} {
		e.publishWebhook(issueBody(t, id, t0, "issue "+id))
	}
	e.waitIdle(10 * time.Second)
	before := e.get(itsm.KindTicket, ticketID("2"))
	var was tombstoneBody
	require.NoError(t, json.Unmarshal(before.Body, &was))
	require.True(t, was.Active)
	n := len(e.events())

	started := time.Now().UTC()
	observed := started.Add(time.Second).Truncate(time.Millisecond)
	const syncID = "sync-7"
	e.publishSync(SyncRecord{Type: "issue", SyncID: syncID, ObservedAt: observed, Record: issueRecord(t, "1", t0, "issue 1")})
	e.publishSync(SyncRecord{Type: SyncTypeReconcile, SyncID: syncID, StartedAt: started, ObservedAt: observed,
		Hidden: []itsm.Kind{itsm.KindTicket}})
	e.waitIdle(15 * time.Second)

	doc := e.alive(itsm.KindTicket, ticketID("2"))
	require.Equal(t, observed.UnixMilli(), doc.Version)
	var hidden tombstoneBody
	require.NoError(t, json.Unmarshal(doc.Body, &hidden))
	require.False(t, hidden.Active)
	require.Equal(t, was.Status, hidden.Status, "a hidden ticket keeps its status")
	require.Equal(t, VisibilityHidden, hidden.VendorAttributes[AttrVisibility])
	require.Equal(t, float64(before.Version), hidden.VendorAttributes[AttrVisibleVersion])
	require.NotEmpty(t, hidden.VendorAttributes[AttrHiddenAt])
	require.NotContains(t, hidden.VendorAttributes, itsm.DeletionReason)
	var seen tombstoneBody
	require.NoError(t, json.Unmarshal(e.alive(itsm.KindTicket, ticketID("1")).Body, &seen))
	require.NotContains(t, seen.VendorAttributes, AttrVisibility, "the sync saw ticket 1")
	evs := e.events()[n:]
	require.Len(t, evs, 1, "one event: ticket 2's update")
	require.Equal(t, itsm.ChangeUpdated, evs[0].Change)
	require.Equal(t, ticketID("2"), evs[0].objectID())

	// The same marker again changes nothing.
	e.publishSync(SyncRecord{Type: SyncTypeReconcile, SyncID: syncID, StartedAt: started, ObservedAt: observed,
		Hidden: []itsm.Kind{itsm.KindTicket}})
	e.waitIdle(10 * time.Second)
	require.Len(t, e.events(), n+1)

	// The next full sync sees it again, unchanged: visible again.
	e.publishSync(SyncRecord{Type: "issue", SyncID: "sync-8", ObservedAt: observed.Add(time.Minute), Record: issueRecord(t, "2", t0, "issue 2")})
	e.waitIdle(10 * time.Second)
	doc = e.alive(itsm.KindTicket, ticketID("2"))
	require.Equal(t, observed.UnixMilli()+1, doc.Version)
	var back tombstoneBody
	require.NoError(t, json.Unmarshal(doc.Body, &back))
	require.True(t, back.Active)
	require.NotContains(t, back.VendorAttributes, AttrVisibility)
	require.Equal(t, "sync-8", doc.SyncID)
	require.Empty(t, e.dlqEntries())
}
