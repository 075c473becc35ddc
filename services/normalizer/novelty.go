package normalizer

import (
	"sync"
	"sync/atomic"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// novelty tracks, per connection and kind, whether the records arriving are
// new to the store, as they all are in a connection's first full sync. While
// the last few reads of a kind found nothing, the normalizer inserts the next
// record straight away (store.Insert) instead of reading first: the insert
// is refused if the object is stored after all, and the record then takes
// the usual path, so a wrong guess costs one refused insert and never
// changes an outcome. One found object ends the streak.
type novelty struct {
	streaks sync.Map // noveltyKey -> *atomic.Int32
}

type noveltyKey struct {
	conn string
	kind itsm.Kind
}

// newStreak is how many records in a row must have been new before the next
// one is assumed to be.
const newStreak = 16

func (v *novelty) counter(conn string, kind itsm.Kind) *atomic.Int32 {
	k := noveltyKey{conn, kind}
	if c, ok := v.streaks.Load(k); ok {
		return c.(*atomic.Int32)
	}
	c, _ := v.streaks.LoadOrStore(k, new(atomic.Int32))
	return c.(*atomic.Int32)
}

func (v *novelty) likelyNew(conn string, kind itsm.Kind) bool {
	return v.counter(conn, kind).Load() >= newStreak
}

// note records whether a record turned out new.
func (v *novelty) note(conn string, kind itsm.Kind, isNew bool) {
	c := v.counter(conn, kind)
	if !isNew {
		c.Store(0)
		return
	}
	if c.Load() < newStreak {
		c.Add(1)
	}
}
