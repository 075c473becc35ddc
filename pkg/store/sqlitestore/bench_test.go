package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
)

// BenchmarkListCommentsOfTicket lists the comments of one ticket among
// 60,000 comments of 20,000 tickets, as the API's ticket_id filter and a
// deleted ticket's cascade do:
//
//	go test -run '^$' -bench ListCommentsOfTicket ./pkg/store/sqlitestore/
func BenchmarkListCommentsOfTicket(b *testing.B) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "itsm.db"))
	require.NoError(b, err)
	defer s.Close()
	const tickets, per = 20000, 3
	body := json.RawMessage(`{"body":"a comment of some length, as they come"}`)
	now := time.Now()
	done := make(chan error, 64)
	for i := range tickets * per {
		go func() {
			_, err := s.Put(ctx, &store.Document{Kind: itsm.KindComment, ID: fmt.Sprint("c", i), OrganizationID: "org",
				ConnectionID: "c", Version: 1, TicketID: fmt.Sprint("t", i%tickets), UpdatedAt: now.Add(time.Duration(i)), Body: body})
			done <- err
		}()
		if i >= 63 {
			require.NoError(b, <-done)
		}
	}
	for range 63 {
		require.NoError(b, <-done)
	}
	b.ResetTimer()
	for i := range b.N {
		p, err := s.List(ctx, store.Filter{OrganizationID: "org", Kind: itsm.KindComment, TicketID: fmt.Sprint("t", i%tickets)})
		require.NoError(b, err)
		require.Len(b, p.Docs, per)
	}
}

// BenchmarkFirstSyncInserts stores what a first full sync of 5,000 issues
// stores (a ticket and its 3 comments, inserted as new, from 64 concurrent
// writers as the normalizer's workers do), with bodies of a simulated
// sync's sizes and ids of the platform's form (UUIDs), and reports the
// bytes the process wrote per record (the WAL and its checkpoints, from
// /proc/self/io; Linux). ITSM_BENCH_WRITERS sets the writers:
//
//	go test -run '^$' -bench FirstSyncInserts -benchtime 1x -count 3 ./pkg/store/sqlitestore/
func BenchmarkFirstSyncInserts(b *testing.B) {
	const issues, comments = 5000, 3
	writers := 64
	if v, err := strconv.Atoi(os.Getenv("ITSM_BENCH_WRITERS")); err == nil {
		writers = v
	}
	ctx := context.Background()
	filler := strings.Repeat("x", 2000)
	for range b.N {
		b.StopTimer()
		s, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "itsm.db"))
		require.NoError(b, err)
		docs := make(chan *store.Document, writers)
		errs := make(chan error, writers)
		for range writers {
			go func() {
				var err error
				for d := range docs {
					if _, e := s.Insert(ctx, d); e != nil && err == nil {
						err = e
					}
				}
				errs <- err
			}()
		}
		written := writtenBytes(b)
		b.StartTimer()
		start := time.Now()
		for i := range issues {
			ticket := itsm.ObjectID("conn", itsm.KindTicket, fmt.Sprint(i))
			docs <- &store.Document{Kind: itsm.KindTicket, ID: ticket, OrganizationID: "org-1", ConnectionID: "conn",
				Version: 1, Identifier: fmt.Sprintf("P%d-%d", i%10, i), Status: "TODO", Priority: "MEDIUM",
				ProjectID: fmt.Sprint("project-", i%10), UpdatedAt: time.Now(),
				Body: json.RawMessage(`{"id":"` + ticket + `","description":"` + filler + `"}`)}
			for c := range comments {
				id := itsm.ObjectID("conn", itsm.KindComment, fmt.Sprint(i, "-", c))
				docs <- &store.Document{Kind: itsm.KindComment, ID: id, OrganizationID: "org-1", ConnectionID: "conn",
					Version: 1, TicketID: ticket, UpdatedAt: time.Now(),
					Body: json.RawMessage(`{"id":"` + id + `","body":"` + filler[:600] + `"}`)}
			}
		}
		close(docs)
		for range writers {
			require.NoError(b, <-errs)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		records := float64(issues * (comments + 1))
		b.ReportMetric(records/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(writtenBytes(b)-written)/records, "written_B/record")
		require.NoError(b, s.Close())
	}
}

// writtenBytes is what this process has written (wchar of /proc/self/io).
func writtenBytes(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(b, err)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}
