package store_test

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/store"
)

// The constants' values are the stored and API values: a rename must fail
// here, not in a customer's database.
func TestConnectionVocabularyValues(t *testing.T) {
	for got, want := range map[any]string{
		store.StatePending: "PENDING", store.StateActive: "ACTIVE", store.StatePaused: "PAUSED", store.StateDeleted: "DELETED",
		store.HealthHealthy: "HEALTHY", store.HealthDegraded: "DEGRADED", store.HealthFailed: "FAILED",
		store.OwnerCustomer: "CUSTOMER", store.OwnerVendor: "VENDOR", store.OwnerPlatform: "PLATFORM",
		store.SyncFull: "full", store.SyncIncremental: "incremental",
		store.SyncRunning: "RUNNING", store.SyncCompleted: "COMPLETED", store.SyncFailed: "FAILED", store.SyncTimedOut: "TIMED_OUT",
	} {
		b, err := json.Marshal(got)
		require.NoError(t, err)
		require.Equal(t, `"`+want+`"`, string(b), "%T", got)
	}
}

func TestSyncKindValid(t *testing.T) {
	require.True(t, store.SyncFull.Valid())
	require.True(t, store.SyncIncremental.Valid())
	for _, k := range []store.SyncKind{"", "FULL", "Full", "incremental ", "delta"} {
		require.False(t, k.Valid(), "%q", k)
	}
}

// storedDetail is a connection detail exactly as the platform stored it
// before the vocabulary had types (the SQLite detail column, the MongoDB
// document's detail in JSON form).
const storedDetail = `{"health":{"status":"DEGRADED","resolution_owner":"CUSTOMER","description":"reconnect",` +
	`"updated_at":"2026-01-02T03:04:05.123456789Z"},` +
	`"last_sync":{"id":"s1","kind":"incremental","phase":"issues","status":"TIMED_OUT","objects":42,"errors":1,` +
	`"last_error":"timeout","started_at":"2026-01-02T03:04:05Z","ended_at":"2026-01-02T03:05:05Z","checkpoint":"tok"},` +
	`"watermark":"2026-01-02T03:00:00Z"}`

func TestStoredDetailReadsBackTyped(t *testing.T) {
	var d store.ConnectionDetail
	require.NoError(t, json.Unmarshal([]byte(storedDetail), &d))
	require.Equal(t, store.HealthDegraded, d.Health.Status)
	require.Equal(t, store.OwnerCustomer, d.Health.ResolutionOwner)
	require.NotNil(t, d.LastSync)
	require.Equal(t, store.SyncIncremental, d.LastSync.Kind)
	require.Equal(t, store.SyncTimedOut, d.LastSync.Status)
	require.Equal(t, time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC), d.LastSync.EndedAt.UTC())

	// Written back byte for byte: an old and a new binary can share a store.
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.Equal(t, storedDetail, string(b))
}

// An unknown value (a newer binary's) is kept, not refused: the types name
// the vocabulary, they do not validate stored data.
func TestUnknownStoredValueKept(t *testing.T) {
	var h store.Health
	require.NoError(t, json.Unmarshal([]byte(`{"status":"SOMETHING_NEW","updated_at":"2026-01-02T03:04:05Z"}`), &h))
	require.Equal(t, store.HealthStatus("SOMETHING_NEW"), h.Status)
}
