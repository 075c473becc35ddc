package raw_test

import (
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/raw"
)

// BenchmarkDecodeSyncRecord reads the envelope of a full sync's issue record
// as the backfill worker writes it, the normalizer's first step per record.
func BenchmarkDecodeSyncRecord(b *testing.B) {
	var page struct {
		Issues []json.RawMessage `json:"issues"`
	}
	if err := json.Unmarshal(fixtures.Jira(b, "rest/search_v3_epic_adf_airbyte_01.json"), &page); err != nil || len(page.Issues) == 0 {
		b.Fatalf("fixture: %v", err)
	}
	at := time.Date(2026, 3, 4, 5, 6, 7, 891000000, time.UTC)
	data := raw.AppendSyncRecord(nil, raw.TypeIssue, "", "5f0c7f9e-1b7b-4c3e-8a44-8d1f4b6f3c21", at, page.Issues[0])
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := raw.DecodeSyncRecord(data); err != nil {
			b.Fatal(err)
		}
	}
}
