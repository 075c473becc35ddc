package jirasync

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"
)

// A body meant to trip a hand-written scanner: braces, brackets, quotes and
// escapes inside strings, nested arrays, numbers, literals and whitespace.
const trickyIssue = ` {
  "expand": "renderedFields,names",
  "id" : "10042",
  "self": "https://api.atlassian.com/ex/jira/x/rest/api/3/issue/10042",
  "key": "ABC-42",
  "fields": {
    "summary": "braces } ] { [ and \"quotes\" and \\ backslash",
    "comment": {"comments": [
        {"id": "7", "body": {"type":"doc","content":[{"type":"text","text":"a \"}\" b"}]}, "updated": "2026-01-02T03:04:05.000+0000"},
        {"id":"8","body":"plain, with [brackets]","updated":"2026-01-02T03:04:06.000+0000"}
      ], "maxResults": 2, "total": 2, "startAt": 0},
    "customfield_1": [1, 2.5e3, -3, true, false, null, {"a": [[]]}],
    "attachment": [{"id": "900", "filename": "x}.log", "created": "2026-01-01T00:00:00.000+0000", "size": 12}],
    "updated": "2026-01-02T03:04:07.000+0000",
    "description": null,
    "labels": ["ü", "\u00e9"]
  }
}`

func TestSplitIssueMatchesEncodingJSON(t *testing.T) {
	s, err := split([]byte(trickyIssue))
	require.NoError(t, err)
	require.Equal(t, "10042", s.id)
	require.Equal(t, "2026-01-02T03:04:07.000+0000", s.updated)
	require.True(t, s.hasComments)
	require.Equal(t, 2, s.commentsTotal)
	require.Len(t, s.comments, 2)
	require.Len(t, s.attachments, 1)

	// The issue body equals the original minus the two fields.
	var want map[string]any
	require.NoError(t, json.Unmarshal([]byte(trickyIssue), &want))
	fields := want["fields"].(map[string]any)
	wantComments := fields["comment"].(map[string]any)["comments"].([]any)
	wantAttachments := fields["attachment"].([]any)
	delete(fields, "comment")
	delete(fields, "attachment")
	var got map[string]any
	require.NoError(t, json.Unmarshal(s.body, &got), string(s.body))
	require.Equal(t, want, got)
	for i, c := range s.comments {
		var v any
		require.NoError(t, json.Unmarshal(c, &v))
		require.Equal(t, wantComments[i], v)
	}
	var a any
	require.NoError(t, json.Unmarshal(s.attachments[0], &a))
	require.Equal(t, wantAttachments[0], a)
	f, err := fieldsOf(s.comments[0], "id", "updated")
	require.NoError(t, err)
	require.Equal(t, "7", text(f["id"]))
	require.Equal(t, "2026-01-02T03:04:05.000+0000", text(f["updated"]))
	require.Equal(t, `a"b`, text([]byte(`"a\"b"`)))
	require.Equal(t, "12", text([]byte(`12`)))
	require.Equal(t, "", text([]byte(`null`)))

	// More comments than embedded: the total says so.
	s, err = split([]byte(`{"id":"1","fields":{"comment":{"comments":[],"total":25}}}`))
	require.NoError(t, err)
	require.True(t, s.hasComments)
	require.Equal(t, 25, s.commentsTotal)
	require.JSONEq(t, `{"id":"1","fields":{}}`, string(s.body))
	// No comment field at all: the comments must be fetched.
	s, err = split([]byte(`{"id":"1","fields":{"updated":"x"}}`))
	require.NoError(t, err)
	require.False(t, s.hasComments)
	require.Equal(t, `{"id":"1","fields":{"updated":"x"}}`, string(s.body))
}

func TestSplitIssueRejectsMalformedInputWithoutPanicking(t *testing.T) {
	for i := range len(trickyIssue) {
		_, _ = split([]byte(trickyIssue[:i])) // must not panic
	}
	for _, bad := range []string{``, `[]`, `{"id":}`, `{"id" "1"}`, `{"fields":{"comment":{"comments":[1,}}}`, `{"id":"1",}`, `{"fields":{}}`} {
		_, err := split([]byte(bad))
		require.Error(t, err, bad)
	}
}
