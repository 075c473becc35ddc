package sqlitestore_test

import (
	"context"
	"fmt"
	"path/filepath"
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
