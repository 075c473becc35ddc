package normalizer

import (
	"container/list"
	"sync"
	"time"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// docCache remembers, for recently written objects, what the normalizer
// needs from the previous version: its version, created_at, and its body
// (for changed_fields). A hit spares the store read
// that precedes every write, and a cached live ticket spares its comments'
// and attachments' parent checks (deletedParentErr): a 20,000-issue full
// sync took 18.0 s without the cache and 15.9 s with it. (On webhook
// updates alone it no longer pays: once SQLite served Get from its writer's
// page cache, hashing cost more than the read it spares, 7,870 against
// 8,240 events/s in BenchmarkNormalizerVsRawUpsert.)
//
// Store versions only grow, so a cached version is a lower bound of the
// stored one whoever else writes: "cached >= incoming" proves the incoming
// record is not newer, and the store's version guard still decides every
// write. What a cache cannot know is a version another normalizer process
// wrote since: changed_fields would then be computed against the older
// version this process saw. That is why it is only for a single normalizer
// process per store (the SQLite deployment) and off unless configured.
type docCache struct {
	maxEntries int
	// maxBytes bounds the bodies kept, whatever their size: Jira issues
	// with many custom fields run to tens of kilobytes.
	maxBytes int
	mu       sync.Mutex
	bytes    int
	ll       *list.List // front: most recently used
	m        map[string]*list.Element
}

// cachedDoc is what a write needs of the version before it. The body is
// kept as it was stored, and split into fields only when the next version
// is diffed against it: most writes of a full sync are never followed by
// another within the cache's reach, and splitting and hashing every body
// up front was a twentieth of a first full sync's CPU.
type cachedDoc struct {
	key       string
	version   int64
	deleted   bool
	createdAt time.Time
	body      []byte
}

// bytesPerEntry sizes the byte budget from the entry budget: an average
// body above it (tickets run to a few kilobytes) evicts by bytes first.
const bytesPerEntry = 4 << 10

func newDocCache(entries int) *docCache {
	if entries <= 0 {
		return nil
	}
	return &docCache{maxEntries: entries, maxBytes: entries * bytesPerEntry, ll: list.New(),
		m: make(map[string]*list.Element, entries)}
}

func cacheKey(kind itsm.Kind, id string) string { return string(kind) + "/" + id }

// get returns the entry of an object; callers hold the object's lock, which
// is what keeps an entry consistent with the object's writes.
func (c *docCache) get(kind itsm.Kind, id string) *cachedDoc {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[cacheKey(kind, id)]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cachedDoc)
}

// put caches a version just written. The body is kept, not copied: stored
// documents are never modified.
func (c *docCache) put(doc *store.Document, createdAt time.Time) {
	if c == nil || len(doc.Body) > c.maxBytes {
		return
	}
	d := &cachedDoc{key: cacheKey(doc.Kind, doc.ID), version: doc.Version, deleted: doc.Deleted,
		createdAt: createdAt, body: doc.Body}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[d.key]; ok {
		c.bytes -= len(e.Value.(*cachedDoc).body)
		e.Value = d
		c.ll.MoveToFront(e)
	} else {
		c.m[d.key] = c.ll.PushFront(d)
	}
	c.bytes += len(d.body)
	for c.ll.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.ll.Back())
	}
}

func (c *docCache) forget(kind itsm.Kind, id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[cacheKey(kind, id)]; ok {
		c.remove(e)
	}
}

func (c *docCache) remove(e *list.Element) {
	d := e.Value.(*cachedDoc)
	c.ll.Remove(e)
	delete(c.m, d.key)
	c.bytes -= len(d.body)
}
