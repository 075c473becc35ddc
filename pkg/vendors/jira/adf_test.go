package jira_test

import (
	"testing"

	json "github.com/go-json-experiment/json/v1"
	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

func doc(content string) json.RawMessage {
	return json.RawMessage(`{"type":"doc","version":1,"content":[` + content + `]}`)
}

func p(text string) string {
	return `{"type":"paragraph","content":[{"type":"text","text":"` + text + `"}]}`
}

func TestPlainTextScalars(t *testing.T) {
	require.Equal(t, "", jira.PlainText(nil))
	require.Equal(t, "", jira.PlainText(json.RawMessage(`null`)))
	require.Equal(t, "", jira.PlainText(json.RawMessage(`{"type":`)))
	require.Equal(t, "h1. Title\n*bold*  ", jira.PlainText(json.RawMessage(`"h1. Title\n*bold*  "`)), "strings as they are")
	require.Equal(t, "42", jira.PlainText(json.RawMessage(`42`)))
	require.Equal(t, "", jira.PlainText(json.RawMessage(`{}`)))
}

func TestPlainTextParagraphsAndMarks(t *testing.T) {
	v := doc(`{"type":"heading","attrs":{"level":1},"content":[{"type":"text","text":"Title"}]},
		{"type":"paragraph","content":[
			{"type":"text","text":"Hello "},
			{"type":"text","text":"bold","marks":[{"type":"strong"}]},
			{"type":"hardBreak"},
			{"type":"text","text":"see "},
			{"type":"text","text":"docs","marks":[{"type":"link","attrs":{"href":"https://example.com/d"}}]},
			{"type":"text","text":" or "},
			{"type":"text","text":"https://example.com/x","marks":[{"type":"link","attrs":{"href":"https://example.com/x"}}]}
		]},
		{"type":"rule"},
		{"type":"blockquote","content":[` + p("quoted") + `]},
		{"type":"paragraph"}`)
	require.Equal(t, "Title\nHello bold\nsee docs (https://example.com/d) or https://example.com/x\n---\nquoted", jira.PlainText(v))
}

func TestPlainTextLists(t *testing.T) {
	v := doc(`{"type":"bulletList","content":[
			{"type":"listItem","content":[` + p("one") + `]},
			{"type":"listItem","content":[` + p("two") + `,
				{"type":"orderedList","attrs":{"order":3},"content":[
					{"type":"listItem","content":[` + p("three") + `]},
					{"type":"listItem","content":[` + p("four") + `]}]}]}]},
		{"type":"orderedList","content":[
			{"type":"listItem","content":[` + p("first") + `]},
			{"type":"listItem","content":[` + p("second") + `]}]},
		{"type":"taskList","attrs":{"localId":"t"},"content":[
			{"type":"taskItem","attrs":{"localId":"a","state":"DONE"},"content":[{"type":"text","text":"shipped"}]},
			{"type":"taskItem","attrs":{"localId":"b","state":"TODO"},"content":[{"type":"text","text":"test"}]}]}`)
	require.Equal(t, "- one\n- two\n  3. three\n  4. four\n1. first\n2. second\n- [x] shipped\n- [ ] test", jira.PlainText(v))
}

func TestPlainTextInlineNodes(t *testing.T) {
	v := doc(`{"type":"paragraph","content":[
		{"type":"mention","attrs":{"id":"5fc9","text":"@Ann"}},
		{"type":"text","text":" "},
		{"type":"mention","attrs":{"id":"abc"}},
		{"type":"text","text":" "},
		{"type":"emoji","attrs":{"shortName":":smile:","text":"😄"}},
		{"type":"emoji","attrs":{"shortName":":custom:"}},
		{"type":"text","text":" "},
		{"type":"inlineCard","attrs":{"url":"https://x.atlassian.net/browse/A-1"}},
		{"type":"text","text":" "},
		{"type":"status","attrs":{"text":"IN PROGRESS","color":"blue"}},
		{"type":"text","text":" "},
		{"type":"date","attrs":{"timestamp":"1582152559000"}},
		{"type":"date","attrs":{"timestamp":1582152559000}}]},
		{"type":"blockCard","attrs":{"url":"https://example.com/card"}},
		{"type":"mediaSingle","content":[{"type":"media","attrs":{"id":"m1","type":"file","collection":"c"}}]}`)
	require.Equal(t, "@Ann @abc 😄:custom: https://x.atlassian.net/browse/A-1 IN PROGRESS 15821525590001582152559000\nhttps://example.com/card\n[media]", jira.PlainText(v))
}

func TestPlainTextCodePanelExpand(t *testing.T) {
	v := doc(`{"type":"codeBlock","attrs":{"language":"go"},"content":[{"type":"text","text":"func main() {\n\tprintln(1)\n}"}]},
		{"type":"panel","attrs":{"panelType":"info"},"content":[` + p("note") + `]},
		{"type":"expand","attrs":{"title":"Details"},"content":[` + p("hidden") + `]},
		{"type":"someFutureBlock","content":[` + p("inside") + `]},
		{"type":"paragraph","content":[{"type":"someFutureInline","content":[{"type":"text","text":"inline"}]},{"type":"text","text":"!"}]}`)
	require.Equal(t, "func main() {\n\tprintln(1)\n}\nnote\nDetails\nhidden\ninside\ninline!", jira.PlainText(v))
}

func TestPlainTextTable(t *testing.T) {
	cell := func(typ, text string) string {
		return `{"type":"` + typ + `","attrs":{},"content":[` + p(text) + `]}`
	}
	v := doc(`{"type":"table","attrs":{"isNumberColumnEnabled":false},"content":[
		{"type":"tableRow","content":[` + cell("tableHeader", "Name") + `,` + cell("tableHeader", "Value") + `]},
		{"type":"tableRow","content":[` + cell("tableCell", "a") + `,{"type":"tableCell","content":[` + p("b1") + `,` + p("b2") + `]}]}]},
		` + p("after"))
	require.Equal(t, "Name\tValue\na\tb1 b2\nafter", jira.PlainText(v))
}

func TestPlainTextJunk(t *testing.T) {
	for _, raw := range []string{
		`{"type":"doc","content":"nope"}`,
		`{"type":"doc","content":[1,"x",null,{"type":7},{"content":{}}]}`,
		`{"type":"orderedList","attrs":{"order":-5},"content":[{"type":"listItem"},3]}`,
		`{"type":"orderedList","attrs":{"order":1e300},"content":[{"type":"listItem"}]}`,
		`{"type":"text","text":{"a":1},"marks":[{"type":"link","attrs":"x"}]}`,
		`[{"type":"paragraph","content":[{"type":"text","text":"bare content"}]}]`,
	} {
		require.NotPanics(t, func() { jira.PlainText(json.RawMessage(raw)) }, raw)
	}
	require.Equal(t, "1. x", jira.PlainText(json.RawMessage(`{"type":"orderedList","attrs":{"order":-5},"content":[{"type":"listItem","content":[`+p("x")+`]}]}`)))
	require.Equal(t, "bare content", jira.PlainText(json.RawMessage(`[`+p("bare content")+`]`)))
}
