package jira

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// json throughout the project is github.com/go-json-experiment/json/v1:
// encoding/json's API and behaviour, run on the v2 engine that Go 1.27 makes
// the standard library's (the module then aliases it). Decoding a record
// no longer validates the whole body before decoding it: draining a
// 30,000-issue full sync stored 1.12 times as many records a second, at
// 0.87 times the CPU (services/backfill BenchmarkFullSync).

// The types in this file never fail on well-formed JSON: real payloads carry
// ids as numbers or strings, booleans as strings, priorities as bare strings,
// and one odd field must not cost us the whole record.

// decodeLenient unmarshals body into v, tolerating type mismatches (the
// mismatched field stays zero, as encoding/json guarantees) so only syntax
// errors are reported.
func decodeLenient(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if err == nil || errors.As(err, &te) {
		return nil
	}
	return err
}

// isObject reports whether raw JSON is an object, which is how ADF and every
// record we map arrive (as opposed to wiki strings or junk).
func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// flexString accepts a JSON string, number or boolean as text; null, objects
// and arrays leave it empty.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		if v, ok := unquote(b); ok {
			*s = flexString(v)
		}
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		*s = flexString(b)
	}
	return nil
}

func (s flexString) String() string { return strings.TrimSpace(string(s)) }

// flexStrings accepts an array of scalars or a single scalar.
type flexStrings []string

func (s *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	if b[0] != '[' {
		var one flexString
		_ = one.UnmarshalJSON(b)
		if v := one.String(); v != "" {
			*s = flexStrings{v}
		}
		return nil
	}
	var many []flexString
	_ = decodeLenient(b, &many)
	out := make(flexStrings, 0, len(many))
	for _, v := range many {
		if t := v.String(); t != "" {
			out = append(out, t)
		}
	}
	*s = out
	return nil
}

// optBool distinguishes "absent" from "false" and accepts "true"/"false"
// strings and 0/1.
type optBool struct{ set, val bool }

func (o *optBool) UnmarshalJSON(b []byte) error {
	var s flexString
	_ = s.UnmarshalJSON(b)
	if v, err := strconv.ParseBool(strings.ToLower(s.String())); err == nil {
		*o = optBool{set: true, val: v}
	}
	return nil
}

// named is Jira's {id,key,name,self} reference (issuetype, priority, project,
// parent...). A bare string is taken as the name.
type named struct {
	ID   flexString `json:"id"`
	Key  flexString `json:"key"`
	Name flexString `json:"name"`
	Self flexString `json:"self"`
}

func (n *named) UnmarshalJSON(b []byte) error {
	type plain named
	var p plain
	*n = named(decodeRef(b, &p, func(name flexString) { p.Name = name }, []member[plain]{
		{"id", func(p *plain, v []byte) { _ = p.ID.UnmarshalJSON(v) }},
		{"key", func(p *plain, v []byte) { _ = p.Key.UnmarshalJSON(v) }},
		{"name", func(p *plain, v []byte) { _ = p.Name.UnmarshalJSON(v) }},
		{"self", func(p *plain, v []byte) { _ = p.Self.UnmarshalJSON(v) }},
	}))
	return nil
}

// member is one field of a reference type: its JSON name and how to decode
// a raw value into it.
type member[T any] struct {
	name string
	set  func(p *T, v []byte)
}

// decodeRef decodes an object into p, or a bare string through setName, and
// returns p either way. Objects are decoded member by member as
// encoding/json would (keys matched case-insensitively, the last repeat
// wins, unknown keys ignored) but without re-validating and reflecting over
// a value the decoder has already validated: users, statuses and references
// are a dozen of every issue's fields, and decoding them through
// json.Unmarshal again was a sixth of the mapping's time.
func decodeRef[T any](b []byte, p *T, setName func(flexString), members []member[T]) T {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return *p
	}
	switch b[0] {
	case '{':
		ok := eachMember(b, func(k string, v []byte) {
			for _, m := range members {
				if strings.EqualFold(k, m.name) {
					m.set(p, v)
					return
				}
			}
		})
		if !ok {
			// Not valid JSON after all: what json.Unmarshal makes of it.
			var zero T
			*p = zero
			_ = decodeLenient(b, p)
		}
	case '"':
		var s flexString
		_ = s.UnmarshalJSON(b)
		setName(s)
	}
	return *p
}

type statusJSON struct {
	ID             flexString `json:"id"`
	Name           flexString `json:"name"`
	StatusCategory named      `json:"statusCategory"`
}

func (st *statusJSON) UnmarshalJSON(b []byte) error {
	type plain statusJSON
	var p plain
	*st = statusJSON(decodeRef(b, &p, func(name flexString) { p.Name = name }, []member[plain]{
		{"id", func(p *plain, v []byte) { _ = p.ID.UnmarshalJSON(v) }},
		{"name", func(p *plain, v []byte) { _ = p.Name.UnmarshalJSON(v) }},
		{"statusCategory", func(p *plain, v []byte) { _ = p.StatusCategory.UnmarshalJSON(v) }},
	}))
	return nil
}

// userJSON covers Cloud (accountId) and Server (key/name) user shapes.
type userJSON struct {
	Self         flexString `json:"self"`
	AccountID    flexString `json:"accountId"`
	Key          flexString `json:"key"`
	Name         flexString `json:"name"`
	DisplayName  flexString `json:"displayName"`
	EmailAddress flexString `json:"emailAddress"`
	Active       optBool    `json:"active"`
	TimeZone     flexString `json:"timeZone"`
	AccountType  flexString `json:"accountType"`
}

func (u *userJSON) UnmarshalJSON(b []byte) error {
	type plain userJSON
	var p plain
	*u = userJSON(decodeRef(b, &p, func(name flexString) { p.Name = name }, []member[plain]{
		{"self", func(p *plain, v []byte) { _ = p.Self.UnmarshalJSON(v) }},
		{"accountId", func(p *plain, v []byte) { _ = p.AccountID.UnmarshalJSON(v) }},
		{"key", func(p *plain, v []byte) { _ = p.Key.UnmarshalJSON(v) }},
		{"name", func(p *plain, v []byte) { _ = p.Name.UnmarshalJSON(v) }},
		{"displayName", func(p *plain, v []byte) { _ = p.DisplayName.UnmarshalJSON(v) }},
		{"emailAddress", func(p *plain, v []byte) { _ = p.EmailAddress.UnmarshalJSON(v) }},
		{"active", func(p *plain, v []byte) { _ = p.Active.UnmarshalJSON(v) }},
		{"timeZone", func(p *plain, v []byte) { _ = p.TimeZone.UnmarshalJSON(v) }},
		{"accountType", func(p *plain, v []byte) { _ = p.AccountType.UnmarshalJSON(v) }},
	}))
	return nil
}

// vendorID is the user's stable id: Cloud has only accountId; Server users
// have an immutable key and a renameable name, so key goes first.
func (u *userJSON) vendorID() string {
	if u == nil {
		return ""
	}
	for _, v := range []flexString{u.AccountID, u.Key, u.Name} {
		if s := v.String(); s != "" {
			return s
		}
	}
	return userIDFromSelf(u.Self.String())
}

// userIDFromSelf recovers the id of a user object that has only its self
// link (published Server comment deliveries carry authors reduced to
// .../user?username=NAME): Cloud links name the accountId, Server links the
// key or the username, each the value its field above would have held.
func userIDFromSelf(self string) string {
	if self == "" {
		return ""
	}
	u, err := url.Parse(self)
	if err != nil || !strings.HasSuffix(u.Path, "/user") {
		return ""
	}
	q := u.Query()
	for _, k := range []string{"accountId", "key", "username"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			return v
		}
	}
	return ""
}

// Jira writes offsets without a colon (+0100); RFC 3339 appears in tools and
// newer APIs. Fractional seconds are accepted by time.Parse without a layout
// element.
var timeLayouts = [...]string{
	"2006-01-02T15:04:05Z0700",
	time.RFC3339,
	"2006-01-02T15:04:05",
	"2006-01-02",
}

// parseTime parses a Jira timestamp (or epoch milliseconds) to UTC. A zero
// time counts as unparseable because the version guard cannot use it, and so
// do years JSON and BSON cannot encode, which would fail only later, in the
// store or on the bus.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if ms, ok := parseEpochMillis(s); ok {
		return usableTime(time.UnixMilli(ms))
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return usableTime(t)
		}
	}
	return time.Time{}, false
}

func usableTime(t time.Time) (time.Time, bool) {
	t = t.UTC()
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t, true
}

func parseEpochMillis(s string) (int64, bool) {
	if s == "" || strings.ContainsAny(s, "-:T") {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, n != 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f == 0 || math.Abs(f) > 1e15 {
		return 0, false
	}
	return int64(f), true
}

func timePtr(s flexString) *time.Time {
	if t, ok := parseTime(s.String()); ok {
		return &t
	}
	return nil
}

func parseInt64(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 1<<62 {
		return int64(f)
	}
	return 0
}

// siteBase derives the browse base (scheme, host and any context path) from a
// REST self link. Links through the api.atlassian.com gateway name the cloud
// id, not the site, so they yield "" rather than a guessed URL.
func siteBase(self string) string {
	u, err := url.Parse(strings.TrimSpace(self))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	if strings.EqualFold(u.Hostname(), "api.atlassian.com") {
		return ""
	}
	i := strings.Index(u.Path, "/rest/")
	if i < 0 {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.Path[:i]
}

// issueIDFromSelf recovers the issue id from a comment self link
// (.../rest/api/N/issue/{id}/comment/{cid}) for callers that lack it.
func issueIDFromSelf(self string) string {
	u, err := url.Parse(strings.TrimSpace(self))
	if err != nil {
		return ""
	}
	parts := strings.Split(u.Path, "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "issue" && parts[i+2] == "comment" && parts[i+1] != "" {
			return parts[i+1]
		}
	}
	return ""
}

// jsonOptions are json.Unmarshal's tolerances, for reading what it reads:
// repeated names (the last wins) and invalid UTF-8 (replaced).
var jsonOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// decoder reads one JSON value in place (from a bytes.Buffer the decoder
// reads without copying). They are pooled: a record's references and ADF
// nodes take dozens, and setting one up costs more than reading a small
// object with it.
type decoder struct {
	jsontext.Decoder
	in bytes.Buffer
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// newDecoder returns a pooled decoder reading raw; release it when done.
func newDecoder(raw []byte) *decoder {
	d := decoders.Get().(*decoder)
	d.in = *bytes.NewBuffer(raw)
	d.Reset(&d.in, jsonOptions...)
	return d
}

func (d *decoder) release() {
	d.in = bytes.Buffer{}
	d.Reset(&d.in)
	decoders.Put(d)
}

// eachMember calls fn with every member of a JSON object, in order: the
// name decoded, the value as a slice of raw. It reports false, having
// stopped, if raw is not a valid object.
func eachMember(raw []byte, fn func(key string, val []byte)) bool {
	return eachMemberBytes(raw, func(k, v []byte) { fn(string(k), v) })
}

// eachMemberBytes is eachMember with the name as bytes, which are only
// copied when it has escapes: for callers that compare names and keep none.
func eachMemberBytes(raw []byte, fn func(key, val []byte)) bool {
	dec := newDecoder(raw)
	defer dec.release()
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return false
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadValue()
		if err != nil {
			return false
		}
		key := memberName(raw[:dec.InputOffset()], len(name))
		val, err := dec.ReadValue()
		if err != nil {
			return false
		}
		// Values are slices of raw, which outlives the decoder.
		end := int(dec.InputOffset())
		fn(key, raw[end-len(val):end:end])
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return false
	}
	_, err := dec.ReadToken()
	return err == io.EOF
}

// memberName is the decoded name whose string token of length n ends b (a
// token the decoder has read, so valid but for its UTF-8).
func memberName(b []byte, n int) []byte {
	tok := b[len(b)-n:]
	if inner := tok[1 : len(tok)-1]; plainString(inner) {
		return inner
	}
	s, _ := unquote(tok)
	return []byte(s)
}

// eachElement calls fn with each element of a JSON array, in order, as a
// slice of raw. It reports false, having stopped, if raw is not a valid
// array.
func eachElement(raw []byte, fn func(val []byte)) bool {
	dec := newDecoder(raw)
	defer dec.release()
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return false
	}
	for k := dec.PeekKind(); k != ']' && k != 0; k = dec.PeekKind() {
		val, err := dec.ReadValue()
		if err != nil {
			return false
		}
		end := int(dec.InputOffset())
		fn(raw[end-len(val) : end : end])
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != ']' {
		return false
	}
	_, err := dec.ReadToken()
	return err == io.EOF
}

// unquote decodes a string token as json.Unmarshal decodes a string: false
// if tok is not one.
func unquote(tok []byte) (string, bool) {
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' && plainString(tok[1:len(tok)-1]) {
		return string(tok[1 : len(tok)-1]), true
	}
	s, err := jsontext.AppendUnquote(nil, tok)
	if err != nil && !jsontext.Value(tok).IsValid(jsonOptions...) {
		// Only invalid UTF-8, which json.Unmarshal replaces as AppendUnquote
		// did, is no error.
		return "", false
	}
	return string(s), true
}

// plainString reports whether the inside of a string token is the string
// itself: no escapes, no control characters, valid UTF-8.
func plainString(inner []byte) bool {
	ascii := true
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return ascii || utf8.Valid(inner)
}
