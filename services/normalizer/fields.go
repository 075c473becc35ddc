package normalizer

import (
	"bytes"
	"io"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
)

// topLevel splits a body into its top-level fields, as decoding it into a
// map[string]json.RawMessage would; nil if it is not a JSON object. The
// values are slices of body, not copies: a decode copied every value, twice
// per write.
func topLevel(body []byte) map[string]json.RawMessage {
	// json.Unmarshal's tolerances: repeated names (the last wins) and
	// invalid UTF-8 (replaced).
	dec := jsontext.NewDecoder(bytes.NewBuffer(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	m := make(map[string]json.RawMessage, 24)
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil
		}
		k := name.String()
		v, err := dec.ReadValue()
		if err != nil {
			return nil
		}
		// The value's place in body, which outlives the decoder.
		end := int(dec.InputOffset())
		m[k] = body[end-len(v) : end : end]
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '}' {
		return nil
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil
	}
	return m
}
