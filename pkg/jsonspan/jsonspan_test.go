package jsonspan_test

import (
	"testing"
	"unicode/utf8"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/jsonspan"
)

func TestMembersSliceTheDocument(t *testing.T) {
	doc := []byte(` { "a" : 1, "b\u0021":{"c":[1,"}"]} ,"d":"x\"y", "e":null }  `)
	var names []string
	var values []string
	require.NoError(t, jsonspan.Members(doc, func(m jsonspan.Member) error {
		names = append(names, m.Name)
		values = append(values, string(m.Value(doc)))
		require.Equal(t, byte('"'), doc[m.NameStart])
		return nil
	}))
	require.Equal(t, []string{"a", "b!", "d", "e"}, names)
	require.Equal(t, []string{"1", `{"c":[1,"}"]}`, `"x\"y"`, "null"}, values)
}

func TestElements(t *testing.T) {
	doc := []byte(`[1, {"a":[2]}, "]" ]`)
	var got []string
	require.NoError(t, jsonspan.Elements(doc, func(s, e int) error { got = append(got, string(doc[s:e])); return nil }))
	require.Equal(t, []string{"1", `{"a":[2]}`, `"]"`}, got)
}

func TestMalformedAndOtherKinds(t *testing.T) {
	none := func(jsonspan.Member) error { return nil }
	for _, bad := range []string{``, `{`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":1}x`, `{"a":1} {}`, `{"a":tru}`} {
		require.Error(t, jsonspan.Members([]byte(bad), none), bad)
	}
	require.ErrorIs(t, jsonspan.Members([]byte(`[1]`), none), jsonspan.ErrNotObject)
	// What json.Unmarshal accepts of vendors' documents is read too.
	require.NoError(t, jsonspan.Members([]byte(`{"a":1,"a":2}`), none))
	require.NoError(t, jsonspan.Members([]byte("{\"\xff\":1}"), none))
	require.ErrorIs(t, jsonspan.Elements([]byte(`{}`), func(int, int) error { return nil }), jsonspan.ErrNotArray)
}

// Members reads what json.Unmarshal reads, and refuses what it refuses.
func FuzzMembersMatchUnmarshal(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":[true,null],"c":{"d":"e"}}`, `{"a":1,}`, `[]`, `{"\u0061":1}`, `{"a":1}x`, `{"a":1,"a":2}`, "{\"\xff\":1}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got := map[string]string{}
		err := jsonspan.Members(doc, func(m jsonspan.Member) error {
			if _, dup := got[m.Name]; !dup {
				got[m.Name] = string(m.Value(doc))
			}
			return nil
		})
		var want map[string]json.RawMessage
		werr := json.Unmarshal(doc, &want)
		if werr != nil || want == nil {
			if err == nil && werr != nil {
				t.Fatalf("accepted what json.Unmarshal refuses: %q (%v)", doc, werr)
			}
			return
		}
		require.NoError(t, err, "%q", doc)
		if !utf8.Valid(doc) {
			return // json.Unmarshal replaces invalid bytes in names; the spans keep them
		}
		require.Len(t, got, len(want))
		for k := range want {
			require.Contains(t, got, k)
		}
	})
}
