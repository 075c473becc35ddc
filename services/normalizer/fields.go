package normalizer

import (
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/jsonscan"
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
	end := jsonscan.Members(b, func(m jsonscan.Member) bool {
		key, plain := jsonscan.Unescaped(m.Name)
		if !plain {
			return false // escaped keys: leave them to encoding/json
		}
		fn(string(key), m.Value)
		return true
	})
	return end >= 0 && jsonscan.SkipSpace(b, end) == len(b)
}
