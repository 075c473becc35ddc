package normalizer

import (
	"fmt"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

func TestEncodeEventIsJSONMarshalOfEvent(t *testing.T) {
	// Bodies are always json.Marshal output (document, tombstoneDoc), which
	// is what makes copying them equivalent to re-encoding them.
	body, err := json.Marshal(map[string]any{"id": "x", "name": "café \"q\" <b>&\u2028", "n": 1.5e3, "tags": []string{"a"}})
	require.NoError(t, err)
	for _, kind := range itsm.Kinds {
		for _, changed := range [][]string{nil, {}, {"name", "tags"}} {
			doc := &store.Document{Kind: kind, ID: "x", OrganizationID: "org-<1>", ConnectionID: "c\"1", Version: 1714564800123, Body: body}
			got, err := encodeEvent(doc, itsm.ChangeUpdated, changed)
			require.NoError(t, err)
			ev := itsm.Event{Object: kind, Change: itsm.ChangeUpdated, ChangedFields: changed, Version: "1714564800123",
				OrganizationID: doc.OrganizationID, ConnectionID: doc.ConnectionID}
			if ev.ChangedFields == nil {
				ev.ChangedFields = []string{}
			}
			require.NoError(t, ev.SetData(body))
			want, err := json.Marshal(ev)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got), "%s %v", kind, changed)
		}
	}
	_, err = encodeEvent(&store.Document{Kind: "worklog", Body: body}, itsm.ChangeCreated, nil)
	require.Error(t, err)
}

func TestDocCacheIsBoundedByEntriesAndBytes(t *testing.T) {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	doc := func(id string, size int) *store.Document {
		return &store.Document{Kind: itsm.KindUser, ID: id, Version: 7, Body: make([]byte, size)}
	}
	c := newDocCache(4)
	c.put(doc("a", 10), created)
	got := c.get(itsm.KindUser, "a")
	require.NotNil(t, got)
	require.Equal(t, int64(7), got.version)
	require.Equal(t, created, got.createdAt)
	require.Len(t, got.body, 10)

	// Least recently used out first, by count.
	for i := range 10 {
		c.put(doc(fmt.Sprint(i), 10), created)
	}
	require.Nil(t, c.get(itsm.KindUser, "0"))
	require.NotNil(t, c.get(itsm.KindUser, "9"))
	require.Len(t, c.m, 4)
	require.Equal(t, 40, c.bytes)

	// And by bytes: two bodies of 40% of the budget leave room for no third.
	big := 4 * bytesPerEntry * 2 / 5
	c.put(doc("big1", big), created)
	c.put(doc("big2", big), created)
	require.NotNil(t, c.get(itsm.KindUser, "big1"))
	c.put(doc("big3", big), created)
	require.Nil(t, c.get(itsm.KindUser, "big2"), "the least recently used big body went")
	require.NotNil(t, c.get(itsm.KindUser, "big1"))
	require.LessOrEqual(t, c.bytes, c.maxBytes)

	// A body over the whole budget is not cached at all.
	c.put(doc("huge", c.maxBytes+1), created)
	require.Nil(t, c.get(itsm.KindUser, "huge"))

	// Replacing an entry replaces its bytes; forgetting frees them.
	before := c.bytes
	c.put(doc("big1", 1), created)
	require.Equal(t, before-big+1, c.bytes)
	c.forget(itsm.KindUser, "big1")
	require.Nil(t, c.get(itsm.KindUser, "big1"))
	require.Equal(t, before-big, c.bytes)

	var off *docCache
	require.Nil(t, off.get(itsm.KindUser, "9"), "a disabled cache misses")
	off.put(doc("9", 1), created)
	off.forget(itsm.KindUser, "9")
}

func TestPreviousChangedMatchesFromBodyAndFromFields(t *testing.T) {
	prev := []byte(`{"a":1,"b":"x","gone":true,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:00Z"}`)
	next := []byte(`{"a":1,"b":"y","new":null,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00Z"}`)
	want := []string{"b", "gone", "new"}
	require.Equal(t, want, (&previous{exists: true, body: prev}).changed(next))
	require.Equal(t, want, (&previous{exists: true, fields: topLevel(prev)}).changed(next))
	require.Nil(t, (&previous{}).changed(next), "a new object has no changed fields")
}

func TestTombstoneDocKeepsTheLastBody(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ticket := &store.Document{Kind: itsm.KindTicket, ID: "t", OrganizationID: "o", ConnectionID: "c", Version: 10,
		Status: "IN_PROGRESS", Identifier: "P-1", SyncID: "old",
		Body: json.RawMessage(`{"id":"t","name":"n","status":"IN_PROGRESS","active":true,"custom":12345678901234567890,"vendor_attributes":{"key":"P-1"},"created_at":"2020-01-01T00:00:00Z","updated_at":"2020-01-02T00:00:00Z"}`)}
	d, err := tombstoneDoc(ticket, 20, ReasonMissingFromFullSync, now)
	require.NoError(t, err)
	require.True(t, d.Deleted)
	require.EqualValues(t, 20, d.Version)
	require.Equal(t, string(itsm.StatusDeleted), d.Status)
	require.Equal(t, "P-1", d.Identifier)
	require.Empty(t, d.SyncID, "an empty sync id keeps the stored one")
	require.Equal(t, now, d.UpdatedAt)
	require.JSONEq(t, `{"id":"t","name":"n","status":"DELETED","status_updated_at":"1970-01-01T00:00:00.02Z","active":false,"custom":12345678901234567890,
		"vendor_attributes":{"key":"P-1","deletion_reason":"missing_from_full_sync"},
		"created_at":"2020-01-01T00:00:00Z","updated_at":"2026-01-02T03:04:05Z"}`, string(d.Body))
	require.Contains(t, string(d.Body), "12345678901234567890", "numbers are kept verbatim")
	require.Equal(t, int64(10), ticket.Version, "the stored document is not modified")

	user := &store.Document{Kind: itsm.KindUser, ID: "u", Body: json.RawMessage(`{"id":"u","status":"ACTIVE","active":true,"vendor_attributes":null}`)}
	d, err = tombstoneDoc(user, 2, ReasonMissingFromFullSync, now)
	require.NoError(t, err)
	require.Equal(t, string(itsm.ObjectDeleted), d.Status)
	require.JSONEq(t, `{"id":"u","status":"DELETED","status_updated_at":"1970-01-01T00:00:00.002Z","active":false,"vendor_attributes":{"deletion_reason":"missing_from_full_sync"},"updated_at":"2026-01-02T03:04:05Z"}`, string(d.Body))

	comment := &store.Document{Kind: itsm.KindComment, ID: "c", TicketID: "t", Body: json.RawMessage(`{"id":"c","body":"hi","active":true}`)}
	d, err = tombstoneDoc(comment, 2, ReasonTicketDeleted, now)
	require.NoError(t, err)
	require.Equal(t, string(itsm.ObjectDeleted), d.Status, "every kind's status tells a tombstone")
	require.Equal(t, "t", d.TicketID)
	require.Equal(t, []string{"active", "updated_at", "vendor_attributes"}[0], diffFields(topLevel(comment.Body), topLevel(d.Body))[0])

	_, err = tombstoneDoc(&store.Document{Kind: itsm.KindGroup, ID: "g", Body: json.RawMessage(`[]`)}, 2, "x", now)
	require.Error(t, err)
}

func FuzzTopLevelMatchesDecoding(f *testing.F) {
	for _, s := range []string{`{}`, ` { } `, `{"a":1}`, `{"a":{"b":[1,"}"]},"c":"\"","d":null,"e":true,"f":-1.5e3}`,
		`[]`, `{"a":1,}`, `{"a" 1}`, `{"a":tru}`, `{"\u0061":1}`, `{"a":1}x`, `{"a":1,"a":2}`, "{\"\xff\":1}", `{"":{]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := topLevel(b)
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil {
			// topLevel reads the normalizer's own stored bodies: on input
			// that is not JSON it must only not panic (the scanner
			// balances values, it does not validate them).
			return
		}
		require.Equal(t, len(want), len(got), "%s", b)
		for k, v := range want {
			require.Equal(t, string(v), string(got[k]), "%s: %s", b, k)
		}
	})
}
