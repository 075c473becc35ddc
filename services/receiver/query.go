package receiver

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// maxQuery bounds a query string; the longest legitimate one (every filter
// and a cursor) is a few hundred bytes.
const maxQuery = 4 << 10

// checkQuery refuses a query string that Go's parser would partly drop
// (url.Values silently skips a pair with a semicolon or a bad escape), so
// that a mistyped filter is a 400 naming the parameter instead of an
// unfiltered answer. A parameter given twice is refused for the same reason:
// only the first would be used.
func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > maxQuery {
		return fail(http.StatusBadRequest, "invalid_query", "query string exceeds "+strconv.Itoa(maxQuery)+" bytes")
	}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil || key == "" || !utf8.ValidString(key) {
			return fail(http.StatusBadRequest, "invalid_query", "malformed query parameter name "+strconv.Quote(rawKey))
		}
		if strings.Contains(pair, ";") {
			return fail(http.StatusBadRequest, "invalid_query", "query parameter "+strconv.Quote(key)+": a semicolon is not a separator (use &) and must be escaped in a value")
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil || !utf8.ValidString(value) {
			return fail(http.StatusBadRequest, "invalid_query", "query parameter "+strconv.Quote(key)+": malformed value")
		}
		if seen[key] {
			return fail(http.StatusBadRequest, "invalid_query", "query parameter "+strconv.Quote(key)+" is given more than once")
		}
		seen[key] = true
	}
	return nil
}

// onlyParams refuses query parameters a route does not take.
func onlyParams(c echo.Context, names ...string) error {
	for k := range c.QueryParams() {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return fail(http.StatusBadRequest, "invalid_query", "unknown query parameter "+strconv.Quote(k))
		}
	}
	return nil
}

// sinceSlack lets a client whose clock runs ahead ask for changes since its
// "now".
const sinceSlack = 24 * time.Hour

// parseSince reads a time filter: RFC 3339, from 1970 up to a day ahead. A
// far-future time would overflow the store's nanosecond order key and match
// everything.
func parseSince(name, v string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fail(http.StatusBadRequest, "invalid_filter", name+": want an RFC 3339 time like 2026-01-02T15:04:05Z")
	}
	if t.Before(time.Unix(0, 0)) || t.After(now.Add(sinceSlack)) {
		return time.Time{}, fail(http.StatusBadRequest, "invalid_filter", name+": want a time from 1970-01-01T00:00:00Z to a day from now")
	}
	return t, nil
}
