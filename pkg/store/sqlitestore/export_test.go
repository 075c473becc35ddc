package sqlitestore

import "github.com/itsmhub/itsm/pkg/store"

// ListQuery and GetByIdentifierSQL let tests ask SQLite how it plans the
// store's statements.
func ListQuery(f store.Filter) (string, []any, error) { return listQuery(f) }

const GetByIdentifierSQL = getByIdentifierSQL

// CommitStats reports how many transactions the committer ran and how many
// bulk batches waited for more writes.
func (s *Store) CommitStats() (batches, lingers int64) {
	return s.commits.stats.batches.Load(), s.commits.stats.lingers.Load()
}
