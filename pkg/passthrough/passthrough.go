// Package passthrough lets an API client call a vendor's REST API with a
// connection's credentials, and only that API: it turns a client's {method,
// path, query, body} into a request under the vendor's API base, or refuses
// it with an error that names the problem. The client controls the path, and
// the connection's token rides along with every request, so the path is
// held to plain relative segments under the base: no scheme, host, userinfo,
// dot segments or encoded separators, however deeply encoded.
package passthrough

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	json "github.com/go-json-experiment/json/v1"
	"golang.org/x/text/unicode/norm"
)

// ErrRefused is wrapped by every refusal of a request's shape; callers
// answer it with 400.
var ErrRefused = errors.New("passthrough request refused")

// ErrTooLarge: the vendor's answer exceeded Limits.MaxResponse.
var ErrTooLarge = errors.New("vendor answer too large")

// Methods a passthrough call may use.
var Methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Request is what an API client asks for. Path is relative to the vendor's
// API base (for Jira .../rest/api/3): "search/jql", "issue/SUP-1".
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Query values are strings, numbers or booleans, or arrays of them
	// (a repeated parameter).
	Query map[string]any `json:"query,omitempty"`
	// Body is sent as JSON; only POST, PUT, PATCH and DELETE take one.
	Body json.RawMessage `json:"body,omitempty"`
}

// Limits bound a call; zero values take the defaults.
type Limits struct {
	MaxBody     int64 // request body (default 1 MiB)
	MaxResponse int64 // vendor answer (default 4 MiB)
	MaxPath     int   // path length (default 1024)
	MaxQuery    int   // encoded query length (default 8 KiB)
}

func (l *Limits) defaults() {
	if l.MaxBody <= 0 {
		l.MaxBody = 1 << 20
	}
	if l.MaxResponse <= 0 {
		l.MaxResponse = 4 << 20
	}
	if l.MaxPath <= 0 {
		l.MaxPath = 1024
	}
	if l.MaxQuery <= 0 {
		l.MaxQuery = 8 << 10
	}
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// maxDecodes is how many layers of percent-encoding a segment is unwrapped
// to look for a hidden separator or dot segment; a segment still encoded
// after that is refused.
const maxDecodes = 3

// Build checks r and makes the request under base (an absolute http(s) URL
// without query). The path's segments may hold letters, digits, "-", "_",
// ".", "~" and percent-encodings of harmless characters only.
func Build(ctx context.Context, base string, r Request, lim Limits) (*http.Request, error) {
	lim.defaults()
	b, err := url.Parse(base)
	if err != nil || (b.Scheme != "https" && b.Scheme != "http") || b.Host == "" || b.User != nil || b.RawQuery != "" || b.Fragment != "" {
		return nil, fmt.Errorf("passthrough: invalid API base URL")
	}
	method := strings.ToUpper(strings.TrimSpace(r.Method))
	if !validMethod(method) {
		return nil, refuse("method %q is not allowed; use one of %s", r.Method, strings.Join(Methods, ", "))
	}
	rawPath, err := checkPath(r.Path, lim.MaxPath)
	if err != nil {
		return nil, err
	}
	query, err := encodeQuery(r.Query, lim.MaxQuery)
	if err != nil {
		return nil, err
	}
	var body io.Reader
	if len(bytes.TrimSpace(r.Body)) > 0 {
		if method == http.MethodGet {
			return nil, refuse("a GET takes no body")
		}
		if int64(len(r.Body)) > lim.MaxBody {
			return nil, refuse("body exceeds %d bytes", lim.MaxBody)
		}
		if !json.Valid(r.Body) {
			return nil, refuse("body is not valid JSON")
		}
		body = bytes.NewReader(r.Body)
	}

	u := *b
	basePath := strings.TrimRight(b.EscapedPath(), "/")
	u.RawPath = basePath + "/" + rawPath
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, refuse("path: malformed percent-encoding")
	}
	u.RawQuery = query
	// Whatever the checks above missed, the URL that goes out must still
	// be the base's scheme and host, under its path.
	final, err := url.Parse(u.String())
	if err != nil || final.Scheme != b.Scheme || final.Host != b.Host || final.User != nil ||
		!strings.HasPrefix(final.EscapedPath(), basePath+"/") {
		return nil, refuse("path leaves the vendor API")
	}
	req, err := http.NewRequestWithContext(ctx, method, final.String(), body)
	if err != nil {
		return nil, refuse("cannot make the request")
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func validMethod(m string) bool {
	for _, x := range Methods {
		if m == x {
			return true
		}
	}
	return false
}

// checkPath returns the path's escaped form relative to the base.
func checkPath(p string, maxLen int) (string, error) {
	if p == "" {
		return "", refuse("path is required")
	}
	if len(p) > maxLen {
		return "", refuse("path exceeds %d bytes", maxLen)
	}
	// One leading slash is tolerated ("/search/jql" means "search/jql");
	// two would be a network-path reference ("//evil.com").
	p = strings.TrimPrefix(p, "/")
	if p == "" || strings.HasPrefix(p, "/") {
		return "", refuse("path must be relative to the vendor API, not %q", "//…")
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			return "", refuse("path may not contain a backslash")
		case c == '?' || c == '#':
			return "", refuse("path may not contain %q; put parameters in query", string(c))
		case c == ':' || c == '@':
			return "", refuse("path may not contain %q: no scheme, host or user info, only a path under the vendor API", string(c))
		case c <= ' ' || c >= 0x7f:
			return "", refuse("path may not contain spaces, control or non-ASCII characters (percent-encode them)")
		case !pathByte(c):
			return "", refuse("path may not contain %q", string(c))
		}
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if seg == "" && i != len(segs)-1 {
			return "", refuse("path may not contain empty segments (//)")
		}
		if err := checkSegment(seg); err != nil {
			return "", err
		}
	}
	return p, nil
}

// pathByte: unreserved characters, "%" for encodings, "/" between segments.
func pathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '%' || c == '/'
}

func checkSegment(seg string) error {
	s := seg
	for depth := 0; ; depth++ {
		if s == "." || s == ".." {
			return refuse("path may not contain dot segments (. or ..), encoded or not")
		}
		if strings.ContainsAny(s, "/\\") {
			return refuse("path may not contain encoded slashes or backslashes")
		}
		if strings.ContainsAny(s, "?#:@") {
			return refuse("path may not contain encoded ?, #, : or @")
		}
		for i := 0; i < len(s); i++ {
			if s[i] < ' ' || s[i] == 0x7f {
				return refuse("path may not contain control characters")
			}
		}
		if !strings.Contains(s, "%") {
			break
		}
		if depth == maxDecodes {
			return refuse("path is percent-encoded too many times")
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return refuse("path: malformed percent-encoding in %q", seg)
		}
		s = d
	}
	// Characters that compatibility normalization (or IDNA) turns into dots
	// or separators ("．．", "。。", "／") are what a normalizing proxy or
	// server would see.
	if folded := strings.NewReplacer("\u3002", ".", "\uff61", ".").Replace(norm.NFKC.String(s)); folded != s &&
		(folded == "." || folded == ".." || strings.ContainsAny(folded, "/\\?#:@")) {
		return refuse("path may not contain characters that normalize to dots or separators")
	}
	// A segment that is an IP address names a host, never a Jira resource:
	// in any notation a resolver takes (inet_aton's octal, hex and short
	// forms, a trailing dot). A bare number stays an id ("issue/10001").
	host := strings.TrimSuffix(strings.Trim(s, "[]"), ".")
	if _, err := netip.ParseAddr(host); err == nil && strings.ContainsAny(s, ".:") || dottedNumbers(host) {
		return refuse("path may not name a host address")
	}
	return nil
}

// dottedNumbers: two to four dot-separated numbers, each decimal, octal
// (leading 0) or hex (0x), the forms inet_aton reads as an IPv4 address.
func dottedNumbers(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		digits := p
		if len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X") {
			digits = p[2:]
		}
		if digits == "" || strings.TrimLeft(digits, "0123456789abcdefABCDEF") != "" {
			return false
		}
		if digits == p && strings.TrimLeft(p, "0123456789") != "" {
			return false // hex digits need the 0x prefix
		}
	}
	return true
}

func encodeQuery(q map[string]any, maxLen int) (string, error) {
	if len(q) == 0 {
		return "", nil
	}
	vals := url.Values{}
	for k, v := range q {
		if k == "" {
			return "", refuse("query: empty parameter name")
		}
		add := func(x any) error {
			switch x := x.(type) {
			case string:
				vals.Add(k, x)
			case bool:
				vals.Add(k, strconv.FormatBool(x))
			case float64:
				vals.Add(k, strconv.FormatFloat(x, 'f', -1, 64))
			case json.Number:
				vals.Add(k, x.String())
			default:
				return refuse("query %q: want a string, number or boolean", k)
			}
			return nil
		}
		if arr, ok := v.([]any); ok {
			for _, x := range arr {
				if err := add(x); err != nil {
					return "", err
				}
			}
			continue
		}
		if err := add(v); err != nil {
			return "", err
		}
	}
	enc := vals.Encode()
	if len(enc) > maxLen {
		return "", refuse("query exceeds %d bytes", maxLen)
	}
	return enc, nil
}

// Response is the vendor's answer as it came: its status, content type, a
// few headers a client needs (rate limits, redirects) and body.
type Response struct {
	Status      int
	ContentType string
	Header      http.Header
	Body        []byte
}

// JSON reports whether the body is JSON.
func (r *Response) JSON() bool {
	mt, _, _ := mime.ParseMediaType(r.ContentType)
	return (mt == "application/json" || strings.HasSuffix(mt, "+json")) && json.Valid(r.Body)
}

// keptHeaders are the vendor headers handed back: rate limiting,
// redirects (an attachment download answers 303) and paging (ServiceNow's
// Table API pages by Link and counts by X-Total-Count).
var keptHeaders = []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
	"X-RateLimit-NearLimit", "X-RateLimit-Rule", "RateLimit-Reason", "Location", "Link", "X-Total-Count"}

// Do builds the request (see Build) and sends it with hc, which must
// authenticate as the connection. Redirects are not followed: the client's
// token would follow them wherever they point.
func Do(ctx context.Context, hc *http.Client, base string, r Request, lim Limits) (*Response, error) {
	lim.defaults()
	req, err := Build(ctx, base, r, lim)
	if err != nil {
		return nil, err
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("passthrough %s %s: %w", req.Method, req.URL.EscapedPath(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, lim.MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("passthrough %s %s: read answer: %w", req.Method, req.URL.EscapedPath(), err)
	}
	if int64(len(body)) > lim.MaxResponse {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxResponse)
	}
	out := &Response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: http.Header{}, Body: body}
	for _, h := range keptHeaders {
		if v := resp.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	return out, nil
}
