package normalizer

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// countingStore is the real store, counting the ticket reads and the
// inserts' outcomes.
type countingStore struct {
	Store
	mu       sync.Mutex
	gets     int
	inserted int
	refused  int
}

func (c *countingStore) Get(ctx context.Context, org string, kind itsm.Kind, id string) (*store.Document, error) {
	if kind == itsm.KindTicket {
		c.mu.Lock()
		c.gets++
		c.mu.Unlock()
	}
	return c.Store.Get(ctx, org, kind, id)
}

func (c *countingStore) Insert(ctx context.Context, d *store.Document) (store.Outcome, error) {
	out, err := c.Store.Insert(ctx, d)
	if d.Kind == itsm.KindTicket && err == nil {
		c.mu.Lock()
		if out == store.Written {
			c.inserted++
		} else {
			c.refused++
		}
		c.mu.Unlock()
	}
	return out, err
}

func (c *countingStore) counts() (gets, inserted, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets, c.inserted, c.refused
}

// A run of new tickets is inserted without reading first, and a stored
// ticket arriving during that run (a wrong guess) is refused by the store
// and then written exactly as if it had been read first: same change,
// same changed fields, its created_at kept. The wrong guess ends the run.
func TestNewRecordsAreInsertedWithoutReading(t *testing.T) {
	e := newEnv(t)
	cs := &countingStore{Store: e.st}
	e.start(Config{Workers: 1, LiveWorkers: 1}, cs, nil)
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

	e.publishWebhook(issueBody(t, "old", t0, "before"))
	e.waitIdle(5 * time.Second)
	first := e.get(itsm.KindTicket, ticketID("old"))
	const fresh = 2 * newStreak
	for i := range fresh {
		e.publishWebhook(issueBody(t, "new-"+strconv.Itoa(i), t0, "fresh"))
	}
	e.waitIdle(10 * time.Second)
	gets, inserted, refused := cs.counts()
	require.Equal(t, 0, refused)
	require.Equal(t, fresh+1-newStreak, inserted, "every ticket after the first %d new ones is inserted straight away", newStreak)
	require.Equal(t, newStreak, gets, "reads only until the run is established")

	// The stored ticket changes while new ones are expected.
	e.publishWebhook(issueBody(t, "old", t0.Add(time.Minute), "after"))
	e.waitIdle(5 * time.Second)
	gets2, inserted2, refused2 := cs.counts()
	require.Equal(t, 1, refused2-refused, "the insert is refused")
	require.Equal(t, inserted, inserted2)
	require.Equal(t, gets+1, gets2, "then the ticket is read")
	// The next new ticket is read first again: the run ended.
	e.publishWebhook(issueBody(t, "new-after", t0, "fresh"))
	e.waitIdle(5 * time.Second)
	gets3, inserted3, _ := cs.counts()
	require.Equal(t, gets2+1, gets3)
	require.Equal(t, inserted2, inserted3)

	evs := e.events()
	var created, updated []event
	for _, ev := range evs {
		if ev.Object != itsm.KindTicket {
			continue
		}
		switch ev.Change {
		case itsm.ChangeCreated:
			created = append(created, ev)
		case itsm.ChangeUpdated:
			updated = append(updated, ev)
		}
	}
	require.Len(t, created, fresh+2)
	require.Len(t, updated, 1)
	require.Equal(t, []string{"name"}, updated[0].ChangedFields)
	last := e.get(itsm.KindTicket, ticketID("old"))
	require.Equal(t, bodyTime(t, first, "created_at"), bodyTime(t, last, "created_at"), "created_at survives the refused insert")
	require.False(t, bodyTime(t, last, "updated_at").Before(bodyTime(t, last, "created_at")))
	var tk itsm.Ticket
	require.NoError(t, json.Unmarshal(last.Body, &tk))
	require.Equal(t, "after", tk.Name)
	// An inserted ticket is stored like a written one.
	ins := e.get(itsm.KindTicket, ticketID("new-"+strconv.Itoa(fresh-1)))
	require.Equal(t, bodyTime(t, ins, "created_at"), bodyTime(t, ins, "updated_at"))
	require.Equal(t, "TEST-new-"+strconv.Itoa(fresh-1), ins.Identifier)
}

func bodyTime(t *testing.T, d *store.Document, field string) time.Time {
	t.Helper()
	at, ok := timeField(topLevel(d.Body), field)
	require.True(t, ok, "%s in %s", field, d.Body)
	return at
}
