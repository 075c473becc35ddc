package sqlitestore

import "github.com/itsmhub/itsm/pkg/store"

// ListQuery and GetByIdentifierSQL let tests ask SQLite how it plans the
// store's statements.
func ListQuery(f store.Filter) (string, []any, error) { return listQuery(f) }

const GetByIdentifierSQL = getByIdentifierSQL
