package normalizer

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/internal/cputime"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// The decode benchmarks are the CPU a message costs the normalizer before
// the store and the bus: reading the RAW body, mapping it, encoding the
// document and diffing it against the previous version's body (the JSON
// work of one write, without I/O). On a shared machine compare cpu-ns/op.
//
//	go test -run '^$' -bench 'Decode' -count 6 ./services/normalizer/

func BenchmarkDecodeWebhook(b *testing.B) {
	conn := &store.Connection{ID: testConn, OrganizationID: testOrg}
	body := fixture(b, "webhooks/issue_updated_status_change_01.json")
	prev := edit(b, body, func(m map[string]any) { obj(obj(m, "issue"), "fields")["summary"] = "before" })
	m := jira.Mapper{}
	prevBody := benchDocBody(b, conn, prev, m.MapWebhook)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	cpu := cputime.Self()
	for b.Loop() {
		recs, err := m.MapWebhook(conn, body)
		if err != nil {
			b.Fatal(err)
		}
		benchWrite(b, conn, recs, prevBody)
	}
	reportCPU(b, cpu)
}

func BenchmarkDecodeSync(b *testing.B) {
	for _, c := range []struct {
		name, typ, issue, fixture, key string
	}{
		{"issue", raw.TypeIssue, "", "rest/search_v3_epic_adf_airbyte_01.json", "issues"},
		{"comment", raw.TypeComment, "10001", "rest/issue_comments_v3_adf_01.json", "comments"},
	} {
		b.Run(c.name, func(b *testing.B) {
			conn := &store.Connection{ID: testConn, OrganizationID: testOrg}
			rec := restPage(b, c.fixture, c.key)[0]
			at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			data := raw.AppendSyncRecord(nil, c.typ, c.issue, "5f0c7f9e-1b7b-4c3e-8a44-8d1f4b6f3c21", at, rec)
			m := jira.Mapper{}
			mapSync := func(conn *store.Connection, data []byte) ([]itsm.Record, error) {
				sr, err := raw.DecodeSyncRecord(data)
				if err != nil {
					return nil, err
				}
				return m.MapSync(conn, sr)
			}
			// The previous version: the same record observed earlier.
			prevData := raw.AppendSyncRecord(nil, c.typ, c.issue, "", at.Add(-time.Hour), rec)
			prevBody := benchDocBody(b, conn, prevData, mapSync)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu := cputime.Self()
			for b.Loop() {
				recs, err := mapSync(conn, data)
				if err != nil {
					b.Fatal(err)
				}
				benchWrite(b, conn, recs, prevBody)
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the process's CPU time per iteration since cpu, which
// follows the code more than the machine's load does (unlike ns/op).
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(cputime.Self()-cpu)/float64(b.N), "cpu-ns/op")
}

// benchDocBody is the stored body of the first record a message maps to.
func benchDocBody(b *testing.B, conn *store.Connection, data []byte, mapFn func(*store.Connection, []byte) ([]itsm.Record, error)) []byte {
	recs, err := mapFn(conn, data)
	require.NoError(b, err)
	require.NotEmpty(b, recs)
	now := time.Now().UTC()
	d, err := document(conn, recs[0], now, now)
	require.NoError(b, err)
	return d.Body
}

// benchWrite is a write's JSON work: the document, and its changed fields.
func benchWrite(b *testing.B, conn *store.Connection, recs []itsm.Record, prevBody []byte) {
	now := time.Now().UTC()
	for i, r := range recs {
		d, err := document(conn, r, now, now)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			_ = changedFields(prevBody, d.Body)
		}
	}
}
