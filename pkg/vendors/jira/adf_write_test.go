package jira_test

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

func TestADFReadsBackAsTheSameText(t *testing.T) {
	for text, want := range map[string]string{
		"one line":                            "one line",
		"first paragraph\n\nsecond paragraph": "first paragraph\nsecond paragraph",
		"line one\nline two\n\n\n\nnext <b>&amp; \"quoted\"</b> 💥": "line one\nline two\nnext <b>&amp; \"quoted\"</b> 💥",
	} {
		doc := jira.ADF(text)
		require.Equal(t, "doc", doc["type"])
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		require.Equal(t, want, jira.PlainText(b), "%s", b)
	}
	b, err := json.Marshal(jira.ADF(""))
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"doc","version":1,"content":[]}`, string(b))
}
