package wiretest_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// withDatabase is uri with its path set to /db, query and credentials kept.
func withDatabase(t *testing.T, uri, db string) string {
	t.Helper()
	u, err := url.Parse(uri)
	require.NoError(t, err, "ITSM_TEST_MONGODB_URI")
	u.Path = "/" + db
	return u.String()
}
