package jira

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// json throughout the project is github.com/go-json-experiment/json/v1:
// encoding/json's API and behaviour, run on the v2 engine that Go 1.27 makes
// the standard library's (the module then aliases it). It decodes a record
// in one pass, without validating the whole body first, and its tokenizer
// (jsontext) is the one this package reads JSON with.

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

// The types below decode from the record's own decoder (UnmarshalJSONFrom,
// which json.Unmarshal prefers to UnmarshalJSON): users, statuses and
// references are a dozen of every issue's fields, and handing each to an
// UnmarshalJSON method costs a second pass over its bytes. UnmarshalJSON is
// the same decoding for callers that hold the bytes.

// unmarshalerFrom is json's UnmarshalerFrom.
type unmarshalerFrom interface {
	UnmarshalJSONFrom(dec *jsontext.Decoder) error
}

// unmarshalBytes decodes one JSON value b into v with v's UnmarshalJSONFrom.
func unmarshalBytes(b []byte, v unmarshalerFrom) error {
	dec := jsonscan.NewDecoder(b)
	defer dec.Release()
	if err := v.UnmarshalJSONFrom(&dec.Decoder); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("jira: data after the JSON value")
	}
	return nil
}

// flexString accepts a JSON string, number or boolean as text; null, objects
// and arrays leave it empty.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, s) }

func (s *flexString) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if k := dec.PeekKind(); k == '{' || k == '[' {
		return dec.SkipValue()
	}
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case '"', '0':
		*s = flexString(tok.String())
	case 't':
		*s = "true"
	case 'f':
		*s = "false"
	}
	return nil
}

func (s flexString) String() string { return strings.TrimSpace(string(s)) }

// flexStrings accepts an array of scalars or a single scalar.
type flexStrings []string

func (s *flexStrings) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, s) }

func (s *flexStrings) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '[' {
		var one flexString
		if err := one.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		if v := one.String(); v != "" {
			*s = flexStrings{v}
		}
		return nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := make(flexStrings, 0)
	for k := dec.PeekKind(); k != ']' && k != 0; k = dec.PeekKind() {
		var one flexString
		if err := one.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		if t := one.String(); t != "" {
			out = append(out, t)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*s = out
	return nil
}

// optBool distinguishes "absent" from "false" and accepts "true"/"false"
// strings and 0/1.
type optBool struct{ set, val bool }

func (o *optBool) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, o) }

func (o *optBool) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var s flexString
	if err := s.UnmarshalJSONFrom(dec); err != nil {
		return err
	}
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

func (n *named) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, n) }

func (n *named) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var p named
	err := decodeRef(dec, &p, func(name flexString) { p.Name = name }, namedMembers)
	*n = p
	return err
}

// namedMembers are the members a named decodes.
var namedMembers = []member[named]{
	{"id", func(p *named, dec *jsontext.Decoder) error { return p.ID.UnmarshalJSONFrom(dec) }},
	{"key", func(p *named, dec *jsontext.Decoder) error { return p.Key.UnmarshalJSONFrom(dec) }},
	{"name", func(p *named, dec *jsontext.Decoder) error { return p.Name.UnmarshalJSONFrom(dec) }},
	{"self", func(p *named, dec *jsontext.Decoder) error { return p.Self.UnmarshalJSONFrom(dec) }},
}

// member is one field of a reference type: its JSON name and how to decode
// the decoder's next value into it.
type member[T any] struct {
	name string
	set  func(p *T, dec *jsontext.Decoder) error
}

// decodeRef decodes an object into p, or a bare string through setName.
// Objects are decoded member by member as json.Unmarshal would (names
// matched case-insensitively, the last repeat wins, unknown names ignored);
// anything else is skipped.
func decodeRef[T any](dec *jsontext.Decoder, p *T, setName func(flexString), members []member[T]) error {
	switch dec.PeekKind() {
	case '{':
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		for dec.PeekKind() == '"' {
			name, err := dec.ReadToken()
			if err != nil {
				return err
			}
			if err := setRefMember(dec, p, name.String(), members); err != nil {
				return err
			}
		}
		_, err := dec.ReadToken()
		return err
	case '"':
		var s flexString
		err := s.UnmarshalJSONFrom(dec)
		setName(s)
		return err
	}
	return dec.SkipValue()
}

func setRefMember[T any](dec *jsontext.Decoder, p *T, name string, members []member[T]) error {
	for _, m := range members {
		if strings.EqualFold(name, m.name) {
			return m.set(p, dec)
		}
	}
	return dec.SkipValue()
}

type statusJSON struct {
	ID             flexString `json:"id"`
	Name           flexString `json:"name"`
	StatusCategory named      `json:"statusCategory"`
}

func (st *statusJSON) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, st) }

func (st *statusJSON) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var p statusJSON
	err := decodeRef(dec, &p, func(name flexString) { p.Name = name }, statusMembers)
	*st = p
	return err
}

// statusMembers are the members a statusJSON decodes.
var statusMembers = []member[statusJSON]{
	{"id", func(p *statusJSON, dec *jsontext.Decoder) error { return p.ID.UnmarshalJSONFrom(dec) }},
	{"name", func(p *statusJSON, dec *jsontext.Decoder) error { return p.Name.UnmarshalJSONFrom(dec) }},
	{"statusCategory", func(p *statusJSON, dec *jsontext.Decoder) error { return p.StatusCategory.UnmarshalJSONFrom(dec) }},
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

func (u *userJSON) UnmarshalJSON(b []byte) error { return unmarshalBytes(b, u) }

func (u *userJSON) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var p userJSON
	err := decodeRef(dec, &p, func(name flexString) { p.Name = name }, userMembers)
	*u = p
	return err
}

// userMembers are the members a userJSON decodes.
var userMembers = []member[userJSON]{
	{"self", func(p *userJSON, dec *jsontext.Decoder) error { return p.Self.UnmarshalJSONFrom(dec) }},
	{"accountId", func(p *userJSON, dec *jsontext.Decoder) error { return p.AccountID.UnmarshalJSONFrom(dec) }},
	{"key", func(p *userJSON, dec *jsontext.Decoder) error { return p.Key.UnmarshalJSONFrom(dec) }},
	{"name", func(p *userJSON, dec *jsontext.Decoder) error { return p.Name.UnmarshalJSONFrom(dec) }},
	{"displayName", func(p *userJSON, dec *jsontext.Decoder) error { return p.DisplayName.UnmarshalJSONFrom(dec) }},
	{"emailAddress", func(p *userJSON, dec *jsontext.Decoder) error { return p.EmailAddress.UnmarshalJSONFrom(dec) }},
	{"active", func(p *userJSON, dec *jsontext.Decoder) error { return p.Active.UnmarshalJSONFrom(dec) }},
	{"timeZone", func(p *userJSON, dec *jsontext.Decoder) error { return p.TimeZone.UnmarshalJSONFrom(dec) }},
	{"accountType", func(p *userJSON, dec *jsontext.Decoder) error { return p.AccountType.UnmarshalJSONFrom(dec) }},
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

// eachMember calls fn with every member of a JSON object, in order: the
// name decoded, the value as a slice of raw. It reports false, having
// stopped, if raw is not a valid object.
func eachMember(raw []byte, fn func(key string, val []byte)) bool {
	return eachMemberBytes(raw, func(k, v []byte) { fn(string(k), v) })
}

// eachMemberBytes is eachMember with the name as bytes, which are only
// copied when it has escapes: for callers that compare names and keep none.
func eachMemberBytes(raw []byte, fn func(key, val []byte)) bool {
	dec := jsonscan.NewDecoder(raw)
	defer dec.Release()
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
	dec := jsonscan.NewDecoder(raw)
	defer dec.Release()
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
	if err != nil && !jsontext.Value(tok).IsValid(jsonscan.V1Syntax...) {
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
