package raw_test

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
)

func TestAppendSyncRecordMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891000000, time.UTC)
	rec := []byte(`{"id":"7","body":{"type":"doc"}}`)
	for _, c := range []struct{ typ, issue, sync string }{
		{"comment", "10042", "5f0c7f9e-1b7b-4c3e-8a44-8d1f4b6f3c21"},
		{"user", "", ""},
		{"issue", "", "odd \"id\" ü"},
	} {
		var got, want raw.SyncRecord
		require.NoError(t, json.Unmarshal(raw.AppendSyncRecord(nil, c.typ, c.issue, c.sync, at, rec), &got))
		b, err := json.Marshal(raw.SyncRecord{Type: c.typ, IssueID: c.issue, SyncID: c.sync, ObservedAt: at, Record: rec})
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &want))
		require.Equal(t, want, got)
	}
}

// DecodeSyncRecord must read what json.Unmarshal reads, and refuse what it
// refuses with its error, but for the record, which is left to its
// mapping's decode.
func FuzzDecodeSyncRecordMatchesUnmarshal(f *testing.F) {
	seeds := []raw.SyncRecord{
		{Type: "issue", ObservedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), SyncID: "s1", Record: json.RawMessage(`{"id":"1","fields":{"x":[1,"}"]}}`)},
		{Type: "comment", IssueID: "10001", ObservedAt: time.Now(), Record: json.RawMessage(`{"id":"7","body":"caf\u00e9 \"q\""}`)},
		{Type: raw.TypeReconcile, SyncID: "s2", StartedAt: time.Now(), Kinds: []itsm.Kind{itsm.KindTicket, itsm.KindComment}},
		{Type: raw.TypeReconcile, SyncID: "s3", StartedAt: time.Now(), Kinds: []itsm.Kind{itsm.KindUser}, Hidden: []itsm.Kind{itsm.KindTicket}},
	}
	for _, sr := range seeds {
		b, err := json.Marshal(sr)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, s := range []string{`{"Type":"issue","record":{}}`, `{"type":"is\u0073ue"}`, `{"type":1}`, `{"type":"a","type":"b"}`,
		`{"observed_at":"yesterday"}`, `{"record":[1,}`, `{"record":{"a":tru}}`, `{"type":"issue"} x`, "{\"type\":\"\xff\"}", `[]`, `{"kinds":"ticket"}`, `{"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := raw.DecodeSyncRecord(b)
		var want raw.SyncRecord
		if err := json.Unmarshal(b, &want); err != nil {
			if gotErr == nil {
				require.False(t, json.Valid(got.Record), "%s accepted with a valid record", b)
				return
			}
			require.EqualError(t, gotErr, err.Error(), "%s", b)
			return
		}
		require.NoError(t, gotErr, "%s", b)
		require.Equal(t, string(want.Record), string(got.Record), "%s", b)
		want.Record, got.Record = nil, nil
		require.Equal(t, want, got, "%s", b)
	})
}

func TestSetHeaders(t *testing.T) {
	h := nats.Header{}
	raw.SetHeaders(h, "org", "conn", "JIRA")
	require.Equal(t, "org", h.Get(itsm.HeaderOrganization))
	require.Equal(t, "conn", h.Get(itsm.HeaderConnection))
	require.Equal(t, "JIRA", h.Get(itsm.HeaderVendor))
}
