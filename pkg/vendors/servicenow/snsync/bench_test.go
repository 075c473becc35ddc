package snsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/itsmhub/itsm/pkg/raw"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snclient"
	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

// BenchmarkFullSync crawls 2,000 incidents with 3 journal entries each
// from the simulator over loopback HTTP, and maps what it publishes.
func BenchmarkFullSync(b *testing.B) {
	srv := snsim.NewTestServer(b, snsim.Options{Seed: 1, Instances: []snsim.Instance{{
		Sizes: snsim.Sizes{Incidents: 2000, JournalPerTask: 3, Users: 200, Groups: 10}}}})
	conn := connOf(srv, "incident")
	s := syncer(adminAuth, snclient.Options{PageSize: 500})
	m := servicenow.Mapper{}
	b.ResetTimer()
	for range b.N {
		rec := newRecorder(conn, store.SyncFull, time.Now)
		if err := s.Full(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
		for _, r := range rec.recs {
			if _, err := m.MapSync(conn, raw.SyncRecord{Type: r.Type, IssueID: r.ParentID, ObservedAt: time.Now(), Record: r.Body}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rec.recs)), "records/op")
	}
}
