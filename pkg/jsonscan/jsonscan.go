// Package jsonscan finds the extent of JSON values without decoding or
// validating them: the project's one hand-written scanner, beside jsontext,
// which reads JSON everywhere else. It serves only the hot paths that slice
// documents another step validates anyway, where a same-run benchmark
// showed it pays (docs/performance.md, "JSON decoding"): the sync envelope
// (pkg/raw), the normalizer's split of a stored body into its fields, the
// Jira crawl's issue splitter and ServiceNow's rows. Callers fall back to a
// decoder for anything these functions reject. Decoder is the pooled
// jsontext decoder those hot paths read with, with json.Unmarshal's syntax.
package jsonscan

import (
	"bytes"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
)

// SkipSpace returns the index of the first non-whitespace byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// StringEnd returns the index after the string that starts at b[i] == '"',
// or -1 if it does not end. It jumps from quote to quote (IndexByte is
// vectorized, which matters for large REST bodies); a quote preceded by an
// odd number of backslashes is escaped.
func StringEnd(b []byte, i int) int {
	for i++; i < len(b); {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		q := i + j
		bs := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1
		}
		i = q + 1
	}
	return -1
}

// ValueEnd returns the index after the value that starts at b[i], or -1.
// Objects and arrays are only balanced, not validated; scalars must be JSON
// literals.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return StringEnd(b, i)
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = StringEnd(b, j); j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	if j == i || !json.Valid(b[i:j]) {
		return -1
	}
	return j
}

// Member is one member of an object: its name's string token (quotes
// included), where that token starts, and its value, which ends where the
// member does.
type Member struct {
	Name, Value []byte
	Start       int
	ValueStart  int
	ValueEnd    int
}

// Members calls fn with each member of the object that starts at b's first
// non-space byte, in order, while fn returns true. It returns the index
// after the object's closing brace, or -1 if the object is malformed or fn
// stopped the walk; like ValueEnd it balances values, not validates them.
func Members(b []byte, fn func(m Member) bool) int {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		nameEnd := StringEnd(b, i)
		if nameEnd < 0 {
			return -1
		}
		m := Member{Name: b[i:nameEnd], Start: i}
		i = SkipSpace(b, nameEnd)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		i = SkipSpace(b, i+1)
		end := ValueEnd(b, i)
		if end < 0 {
			return -1
		}
		m.ValueStart, m.ValueEnd, m.Value = i, end, b[i:end]
		if !fn(m) {
			return -1
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
}

// Elements calls fn with each element of the array that starts at b's first
// non-space byte, in order, while fn returns true. It reports whether the
// array was delimited to its end; like ValueEnd it balances, not validates.
func Elements(b []byte, fn func(v []byte) bool) bool {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return true
	}
	for {
		end := ValueEnd(b, i)
		if end < 0 {
			return false
		}
		if !fn(b[i:end]) {
			return false
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			return true
		default:
			return false
		}
	}
}

// Unescaped and String take one string token, as StringEnd delimits it or
// encoding/json hands it to an UnmarshalJSON method.
//
// Unescaped returns the content of a string token that needs no decoding
// (no escapes, no control characters, valid UTF-8), which is then the
// string itself; false for any other token.
func Unescaped(tok []byte) ([]byte, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return nil, false
	}
	inner := tok[1 : len(tok)-1]
	ascii := true
	for _, c := range inner {
		// Escapes need decoding; raw control characters are invalid JSON.
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if !ascii && !utf8.Valid(inner) {
		return nil, false
	}
	return inner, true
}

// String decodes a string token: directly when it needs no unescaping
// (most of Jira's strings, sparing a json.Unmarshal each), otherwise with
// encoding/json. False if tok is not a valid JSON string.
func String(tok []byte) (string, bool) {
	if inner, ok := Unescaped(tok); ok {
		return string(inner), true
	}
	var s string
	return s, json.Unmarshal(tok, &s) == nil
}
