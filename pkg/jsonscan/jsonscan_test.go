package jsonscan_test

import (
	"encoding/json"
	"testing"

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
