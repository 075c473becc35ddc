package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	json "github.com/go-json-experiment/json/v1"
)

// NameMap is a connection's custom mapping, vendor name to model value, in
// the order the customer gave it: that is the order the API answers with,
// and the first entry of a name wins.
type NameMap[V ~string] []NameEntry[V]

// NameEntry is one vendor name and its model value.
type NameEntry[V ~string] struct {
	Name  string
	Value V
}

// Map is the mapping as a lookup table. Names match case-insensitively, so
// of the entries whose names differ only by case the first one is kept.
func (m NameMap[V]) Map() map[string]V {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]V, len(m))
	seen := make(map[string]bool, len(m))
	for _, e := range m {
		if k := strings.ToLower(strings.TrimSpace(e.Name)); !seen[k] {
			seen[k] = true
			out[e.Name] = e.Value
		}
	}
	return out
}

// MarshalJSON writes the API's form: a list of one-entry objects.
func (m NameMap[V]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		one, err := json.Marshal(map[string]string{e.Name: string(e.Value)})
		if err != nil {
			return nil, err
		}
		b.Write(one)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the list form, and the object form that connections
// stored before mappings kept their order (read in name order, as the API
// answered then).
func (m *NameMap[V]) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*m = nil
		return nil
	case len(data) > 0 && data[0] == '{':
		var legacy map[string]V
		if err := json.Unmarshal(data, &legacy); err != nil {
			return fmt.Errorf("mapping: %w", err)
		}
		out := make(NameMap[V], 0, len(legacy))
		for _, k := range slices.Sorted(mapsKeys(legacy)) {
			out = append(out, NameEntry[V]{k, legacy[k]})
		}
		*m = out
		return nil
	}
	var entries []map[string]V
	if err := json.Unmarshal(data, &entries); err != nil {
		return fmt.Errorf("mapping: %w", err)
	}
	out := make(NameMap[V], 0, len(entries))
	for _, e := range entries {
		if len(e) != 1 {
			return fmt.Errorf("mapping: an entry has %d names, want 1", len(e))
		}
		for k, v := range e {
			out = append(out, NameEntry[V]{k, v})
		}
	}
	*m = out
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
