package normalizer

import (
	"hash/maphash"
	"sync"
)

// objectLocks serializes the read-write-publish of one object within a
// process, so that its events leave in version order: without it, two workers
// writing versions 2 and 3 could publish 3 before 2, and a subscriber keeping
// "the last event" would keep the stale one. Striped rather than one mutex per
// id, so memory stays bounded; unrelated objects rarely share a stripe. Across
// replicas only the store's version guard orders writes, which is why every
// event carries its version.
type objectLocks struct {
	seed    maphash.Seed
	stripes [1024]sync.Mutex
}

func newObjectLocks() *objectLocks { return &objectLocks{seed: maphash.MakeSeed()} }

// lock locks id's stripe and returns its unlock. Callers hold at most one
// stripe at a time (a ticket's cascade runs after its own lock is released),
// so stripes cannot deadlock.
func (l *objectLocks) lock(id string) func() {
	m := &l.stripes[maphash.String(l.seed, id)%uint64(len(l.stripes))]
	m.Lock()
	return m.Unlock
}
