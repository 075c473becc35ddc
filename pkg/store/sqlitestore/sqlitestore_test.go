package sqlitestore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
	"github.com/itsmhub/itsm/pkg/store/sqlitestore"
	"github.com/itsmhub/itsm/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "itsm.db"))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Writes are committed in groups (commit.go); a write that fails must fail
// alone, not take the other writes of its transaction with it.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	defer s.Close()

	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &store.Document{Kind: itsm.KindTicket, ID: fmt.Sprintf("t-%d", i), OrganizationID: "org",
				ConnectionID: "c", Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)}
			if i%10 == 0 {
				d.Body = nil // violates NOT NULL
			}
			_, errs[i] = s.Put(ctx, d)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, getErr := s.Get(ctx, "org", itsm.KindTicket, fmt.Sprintf("t-%d", i))
		if i%10 == 0 {
			require.Error(t, err, "write %d", i)
			require.ErrorIs(t, getErr, store.ErrNotFound)
			continue
		}
		require.NoError(t, err, "write %d", i)
		require.NoError(t, getErr, "write %d", i)
	}
}

// A write queued when the store closes is answered, not left waiting.
func TestCloseAnswersWrites(t *testing.T) {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "itsm.db"))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: fmt.Sprintf("t-%d", i), OrganizationID: "org",
				Version: 1, UpdatedAt: time.Now(), Body: json.RawMessage(`{}`)})
		}()
	}
	require.NoError(t, s.Close())
	wg.Wait() // returns: every Put got an answer
	_, err = s.Put(ctx, &store.Document{Kind: itsm.KindTicket, ID: "late", OrganizationID: "org", Version: 1, Body: json.RawMessage(`{}`)})
	require.Error(t, err)
}
