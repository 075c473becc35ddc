package app_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/passthrough"
	"github.com/itsmhub/itsm/services/receiver"
)

func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		out = append(out, tag)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIWriteSchemasMatchTheCode: the write-back, search and
// passthrough schemas list exactly what the handlers read and answer.
func TestOpenAPIWriteSchemasMatchTheCode(t *testing.T) {
	type schema struct {
		Properties map[string]struct {
			Items struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"items"`
		} `json:"properties"`
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(receiver.OpenAPI, &doc))
	props := func(name string) []string {
		s, ok := doc.Components.Schemas[name]
		require.True(t, ok, name)
		var out []string
		for k := range s.Properties {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(xs []string) []string { xs = append([]string(nil), xs...); sort.Strings(xs); return xs }
	require.Equal(t, sorted(receiver.CreateTicketFields), props("CreateTicket"))
	require.Equal(t, sorted(receiver.PatchTicketFields), props("PatchTicket"))
	require.Equal(t, jsonFields(passthrough.Request{}), props("PassthroughRequest"))
	require.Equal(t, jsonFields(receiver.PassthroughAnswer{}), props("PassthroughAnswer"))
	var items []string
	for k := range doc.Components.Schemas["NativeSearchPage"].Properties["items"].Items.Properties {
		items = append(items, k)
	}
	require.Equal(t, jsonFields(connector.SearchItem{}), sorted(items))
}
