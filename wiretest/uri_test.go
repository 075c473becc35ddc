package wiretest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// withDatabase is uri with its path set to /db, query and credentials kept.
// Credentials authenticate against the URI's own database (MongoDB's
// default authSource) or admin, not against the test's.
func withDatabase(t *testing.T, uri, db string) string {
	t.Helper()
	u, err := url.Parse(uri)
	require.NoError(t, err, "ITSM_TEST_MONGODB_URI")
	q := u.Query()
	if u.User != nil && !q.Has("authSource") {
		src := strings.TrimPrefix(u.Path, "/")
		if src == "" {
			src = "admin"
		}
		q.Set("authSource", src)
		u.RawQuery = q.Encode()
	}
	u.Path = "/" + db
	return u.String()
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://h1,h2/?replicaSet=rs0":      "mongodb://h1,h2/t1?replicaSet=rs0",
		"mongodb://u:p@h/app":                  "mongodb://u:p@h/t1?authSource=app",
		"mongodb://u:p@h/":                     "mongodb://u:p@h/t1?authSource=admin",
		"mongodb://u:p@h/app?authSource=other": "mongodb://u:p@h/t1?authSource=other",
	} {
		require.Equal(t, want, withDatabase(t, in, "t1"), in)
	}
}
