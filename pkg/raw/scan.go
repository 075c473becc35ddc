package raw

import (
	"bytes"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
)

// A minimal scanner for the sync envelope, the one place the project reads
// JSON by hand. It slices the record out of the envelope without validating
// it: the mapping's decode of the record validates it anyway, and a second
// validation here (json.Unmarshal's or jsontext's) is a full pass over every
// record of a sync. It only balances nested values; anything it does not
// accept goes to json.Unmarshal.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i] == '"',
// or -1. A quote preceded by an odd number of backslashes is escaped.
func stringEnd(b []byte, i int) int {
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

// valueEnd returns the index after the value that starts at b[i], or -1.
// Objects and arrays are balanced, not validated; scalars must be JSON
// literals.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return stringEnd(b, i)
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
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

// members calls fn with the name token and the value of each member of the
// object b, while fn returns true, and reports whether b is one object whose
// members fn all took.
func members(b []byte, fn func(name, value []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		nameEnd := stringEnd(b, i)
		if nameEnd < 0 {
			return false
		}
		name := b[i:nameEnd]
		if i = skipSpace(b, nameEnd); i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		end := valueEnd(b, i)
		if end < 0 || !fn(name, b[i:end]) {
			return false
		}
		if i = skipSpace(b, end); i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

// plainString returns the content of a string token that needs no decoding
// (no escapes, no control characters, valid UTF-8); false for any other.
func plainString(tok []byte) ([]byte, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return nil, false
	}
	inner := tok[1 : len(tok)-1]
	ascii := true
	for _, c := range inner {
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
