package jsonscan_test

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/jsonscan"
)

func TestValueEnd(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{`"a\"b",`, 6},
		{`{"k":[1,{"x":"}"}]} `, 19},
		{`[]`, 2},
		{`123.5e3}`, 7},
		{`true,`, 4},
		{`null`, 4},
		{`tru,`, -1},   // not a literal
		{`"open`, -1},  // unterminated string
		{`{"a":1`, -1}, // unbalanced
		{``, -1},
	}
	for _, c := range cases {
		require.Equal(t, c.want, jsonscan.ValueEnd([]byte(c.in), 0), c.in)
	}
	require.Equal(t, 3, jsonscan.SkipSpace([]byte(" \t\nx"), 0))
}

func TestMembers(t *testing.T) {
	b := []byte(` {"a": 1, "b\"c" :{"x":[1]} ,"d":"e"} tail`)
	var got []string
	end := jsonscan.Members(b, func(m jsonscan.Member) bool {
		require.Equal(t, m.Value, b[m.ValueStart:m.ValueEnd])
		require.Equal(t, byte('"'), b[m.Start])
		got = append(got, string(m.Name)+"="+string(m.Value))
		return true
	})
	require.Equal(t, []string{`"a"=1`, `"b\"c"={"x":[1]}`, `"d"="e"`}, got)
	require.Equal(t, " tail", string(b[end:]), "the index after the closing brace")

	n := 0
	require.Equal(t, -1, jsonscan.Members(b, func(jsonscan.Member) bool { n++; return false }), "stopped")
	require.Equal(t, 1, n)
	require.Equal(t, 2, jsonscan.Members([]byte(`{}`), func(jsonscan.Member) bool { t.Fatal("no members"); return true }))
	for _, bad := range []string{`{"a":1`, `{"a" 1}`, `{"a":1 "b":2}`, `{a:1}`, `[1]`, ``} {
		require.Equal(t, -1, jsonscan.Members([]byte(bad), func(jsonscan.Member) bool { return true }), bad)
	}
}

// FuzzValueEnd: whatever ValueEnd accepts as a whole document is valid JSON
// when it is a scalar or a string, and never runs past the input.
func FuzzValueEnd(f *testing.F) {
	for _, s := range []string{`"x"`, `{"a":[1,2]}`, `12`, `false`, `"\u00e9"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := jsonscan.ValueEnd(b, 0)
		if end < 0 {
			return
		}
		require.LessOrEqual(t, end, len(b))
		if b[0] != '{' && b[0] != '[' && b[0] != '"' {
			require.True(t, json.Valid(b[:end]), "%q", b[:end])
		}
	})
}

// String decodes a string token (as StringEnd delimits it) exactly as
// encoding/json does.
func FuzzStringMatchesUnmarshal(f *testing.F) {
	for _, s := range []string{`"plain"`, `"caf\u00e9"`, `"tab\t"`, `"a\"b"`, "\"\xff\"", `"`, `""`, `"x`, `1`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' || jsonscan.StringEnd(b, 0) != len(b) {
			return // not one string token: String's callers never pass those
		}
		got, ok := jsonscan.String(b)
		var want string
		wantOK := json.Unmarshal(b, &want) == nil
		if ok != wantOK || got != want {
			t.Fatalf("%q: String = %q, %v; json.Unmarshal = %q, %v", b, got, ok, want, wantOK)
		}
	})
}
