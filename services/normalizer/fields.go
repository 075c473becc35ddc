package normalizer

import (
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// topLevel splits a body into its top-level fields, as decoding it into a
// map[string]json.RawMessage would; nil if it is not a JSON object. The
// values are slices of body, not copies: a decode copied every value, twice
// per write.
func topLevel(body []byte) map[string]json.RawMessage {
	// Stored bodies are the normalizer's own encoding: the scanner slices
	// them (pkg/jsonscan: on this path it pays against jsontext); anything
	// it leaves, such as escaped names, is decoded as json.Unmarshal does.
	m := make(map[string]json.RawMessage, 24)
	end := jsonscan.Members(body, func(mb jsonscan.Member) bool {
		key, plain := jsonscan.Unescaped(mb.Name)
		if !plain {
			return false
		}
		m[string(key)] = mb.Value
		return true
	})
	if end >= 0 && jsonscan.SkipSpace(body, end) == len(body) {
		return m
	}
	var slow map[string]json.RawMessage
	if json.Unmarshal(body, &slow) != nil {
		return nil
	}
	return slow
}
