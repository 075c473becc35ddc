package normalizer

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// topLevel splits a body into its top-level fields; nil if it is not a JSON
// object. Bodies are json.Marshal output (the normalizer's own, or stored by
// it), so one scan that slices the values in place suffices: decoding into
// map[string]json.RawMessage validated and copied every value, twice per
// write. What the scan rejects falls back to that decoding; nested values
// are only balanced, not validated, which valid bodies never need.
func topLevel(body []byte) map[string]json.RawMessage {
	m := make(map[string]json.RawMessage, 24)
	if scanMembers(body, func(k string, v []byte) { m[k] = v }) {
		return m
	}
	var slow map[string]json.RawMessage
	if json.Unmarshal(body, &slow) != nil {
		return nil
	}
	return slow
}

// scanMembers calls fn with each member of a JSON object in order, or
// reports false if b is not a well-formed object.
func scanMembers(b []byte, fn func(key string, val []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		kend := stringEnd(b, i)
		if kend < 0 {
			return false
		}
		key := b[i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			return false // escaped keys: leave them to encoding/json
		}
		i = skipSpace(b, kend)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		if vend < 0 {
			return false
		}
		fn(string(key), b[i:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string that starts at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index after the value that starts at b[i]. Nested
// values are only balanced, not validated; scalars must be JSON literals.
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
