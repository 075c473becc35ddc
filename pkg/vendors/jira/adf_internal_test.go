package jira

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"unicode"

	json "github.com/go-json-experiment/json/v1"
)

// plainTextMap is PlainText for ADF by decoding it into an any first.
func plainTextMap(b []byte) string {
	var doc any
	_ = json.Unmarshal(b, &doc)
	text, _ := renderADFMap(doc)
	return strings.TrimRightFunc(text, unicode.IsSpace)
}

// FuzzADFMatchesMapDecode holds the byte-level ADF renderer and
// adfAttribute equal to decoding into maps: the same text, and the same
// JSON in a document's vendor attributes.
func FuzzADFMatchesMapDecode(f *testing.F) {
	for _, b := range fixtureBodies(f) {
		f.Add(b)
	}
	for _, s := range []string{
		`{"type":"doc","content":[{"type":"paragraph","content":[{"type":"text","text":"a <b> & c\u2028","marks":[{"type":"link","attrs":{"href":"https://x?a=1&b=2"}}]}]}]}`,
		`{"type":"orderedList","attrs":{"order":"3"},"content":[{"type":"listItem","content":[{"type":"text","text":"x"}]},7,{"type":"listItem"}]}`,
		`{"type":"taskList","content":[{"type":"taskItem","attrs":{"state":"DONE"},"content":[{"type":"text","text":"t"}]}]}`,
		`{"type":"text","text":1e400,"type":"text"}`, `{"type":"text","text":-0.0}`, `{"type":"text","text":1E+2}`,
		`{"b":1,"a":2,"a":3}`, `{"\u00e9":1,"e":2,"\ud83d\ude00":3,"\uffff":4}`, "{\"\xff\":1}",
		`{"type":"mention","attrs":{"id":12}}`, `{"type":"emoji","attrs":{"shortName":":x:"}}`,
		`{"type":"table","content":[{"type":"tableRow","content":[{"type":"tableCell","content":[{"type":"paragraph","content":[{"type":"text","text":"a b"}]}]}]}]}`,
		`[{"type":"text","text":"x"},[{"type":"rule"}]]`, `{"type":"expand","attrs":{"title":"T"},"content":[]}`,
		`{"d":"2024-05-01 😀","n":-0,"m":-1e-400,"p":-0.5}`, `{"😀":1,"｡":2,"a😀":3}`,
		`{"x":"\u0000\u001f\b\f\n\r\t\u007f\"\\/"}`, `{"n":[0.1,1e21,1e-7,123456789012345678901234567890,-1.5e-300]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 || (b[0] != '{' && b[0] != '[') || !json.Valid(b) {
			return
		}
		if got, want := renderText(b), plainTextMap(b); got != want {
			t.Fatalf("%q: text %q, decoded into maps %q", b, got, want)
		}
		if b[0] != '{' {
			return
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		want, err := json.Marshal(map[string]any{"adf": m})
		if err != nil {
			t.Skip("maps that do not encode")
		}
		got, err := json.Marshal(map[string]any{"adf": adfAttribute(b)})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: attribute %s (%v), maps encode to %s", b, got, err, want)
		}
	})
}

// renderADF renders one node and reports whether it is a block (its own
// line) or inline (joined to its neighbours).
func renderADFMap(v any) (string, bool) {
	switch n := v.(type) {
	case []any:
		text, _ := renderChildrenMap(n, "\n")
		return text, true
	case map[string]any:
		return renderNodeMap(n)
	}
	return "", false
}

func renderNodeMap(n map[string]any) (string, bool) {
	typ, _ := n["type"].(string)
	attrs, _ := n["attrs"].(map[string]any)
	content, _ := n["content"].([]any)
	switch typ {
	case "text":
		text := scalarTextMap(n["text"])
		if href := linkHrefMap(n["marks"]); href != "" && href != text {
			text += " (" + href + ")"
		}
		return text, false
	case "hardBreak":
		return "\n", false
	case "mention":
		if t := scalarTextMap(attrs["text"]); t != "" {
			return t, false
		}
		if id := scalarTextMap(attrs["id"]); id != "" {
			return "@" + id, false
		}
		return "", false
	case "emoji":
		if t := scalarTextMap(attrs["text"]); t != "" {
			return t, false
		}
		return scalarTextMap(attrs["shortName"]), false
	case "inlineCard":
		return scalarTextMap(attrs["url"]), false
	case "blockCard", "embedCard":
		return scalarTextMap(attrs["url"]), true
	case "status":
		return scalarTextMap(attrs["text"]), false
	case "date":
		return scalarTextMap(attrs["timestamp"]), false
	case "media", "mediaInline":
		return "[media]", false
	case "mediaGroup", "mediaSingle":
		text, _ := renderChildrenMap(content, " ")
		return text, true
	case "rule":
		return "---", true
	case "bulletList":
		return renderListMap(content, func(int, map[string]any) string { return "- " }), true
	case "orderedList":
		start := listStartMap(attrs)
		return renderListMap(content, func(i int, _ map[string]any) string {
			return strconv.Itoa(start+i) + ". "
		}), true
	case "taskList":
		return renderListMap(content, func(_ int, item map[string]any) string {
			if a, _ := item["attrs"].(map[string]any); strings.EqualFold(scalarTextMap(a["state"]), "DONE") {
				return "- [x] "
			}
			return "- [ ] "
		}), true
	case "decisionList":
		return renderListMap(content, func(int, map[string]any) string { return "- " }), true
	case "table":
		rows := make([]string, 0, len(content))
		for _, r := range content {
			if text, _ := renderADFMap(r); text != "" {
				rows = append(rows, text)
			}
		}
		return strings.Join(rows, "\n"), true
	case "tableRow":
		cells := make([]string, 0, len(content))
		for _, c := range content {
			text, _ := renderADFMap(c)
			// A cell's paragraphs must stay on the row's line.
			cells = append(cells, strings.Join(strings.Fields(text), " "))
		}
		return strings.Join(cells, "\t"), true
	case "expand", "nestedExpand":
		text, _ := renderChildrenMap(content, "\n")
		if title := scalarTextMap(attrs["title"]); title != "" {
			text = title + "\n" + text
		}
		return text, true
	}
	// doc, paragraph, heading, blockquote, codeBlock, panel, list items and
	// node types ADF may add later: their content in document order.
	text, hasBlock := renderChildrenMap(content, "\n")
	return text, hasBlock || isADFBlock(typ)
}

// renderChildren concatenates runs of inline children and puts each block
// child on its own line (sep), so mixed content reads naturally.
func renderChildrenMap(content []any, sep string) (string, bool) {
	var (
		parts    []string
		line     strings.Builder
		inLine   bool
		hasBlock bool
	)
	for _, c := range content {
		text, block := renderADFMap(c)
		if !block {
			line.WriteString(text)
			inLine = true
			continue
		}
		if inLine {
			parts = append(parts, line.String())
			line.Reset()
			inLine = false
		}
		parts = append(parts, text)
		hasBlock = true
	}
	if inLine {
		parts = append(parts, line.String())
	}
	return strings.Join(parts, sep), hasBlock
}

func renderListMap(items []any, prefix func(int, map[string]any) string) string {
	lines := make([]string, 0, len(items))
	i := 0
	for _, it := range items {
		item, ok := it.(map[string]any)
		if !ok {
			continue
		}
		p := prefix(i, item)
		i++
		text, _ := renderADFMap(item)
		// Continuation lines (nested lists, extra paragraphs) are indented
		// under the item's text.
		text = strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", len(p)))
		lines = append(lines, p+text)
	}
	return strings.Join(lines, "\n")
}

func listStartMap(attrs map[string]any) int {
	switch v := attrs["order"].(type) {
	case float64:
		if v >= 0 && v < 1e9 {
			return int(v)
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 && n < 1e9 {
			return n
		}
	}
	return 1
}

// linkHref returns the target of a link mark, kept because the link is often
// the only meaningful part of the text.
func linkHrefMap(marks any) string {
	list, _ := marks.([]any)
	for _, mk := range list {
		m, _ := mk.(map[string]any)
		if t, _ := m["type"].(string); t != "link" {
			continue
		}
		a, _ := m["attrs"].(map[string]any)
		return scalarTextMap(a["href"])
	}
	return ""
}

func scalarTextMap(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	}
	return ""
}

// Common documents take the canonical form; the maps are only for what it
// cannot match.
func TestADFAttributeForm(t *testing.T) {
	for doc, canonical := range map[string]bool{
		`{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"due 2024-05-01 😀 <b>"}]}]}`: true,
		`{"type":"doc","attrs":{"n":-0.5,"z":0}}`: true,
		`{"type":"doc","type":"paragraph"}`:       false,
		`{"😀":1}`:                                 false,
		`{"n":-0.0}`:                              false,
		"{\"s\":\"\xff\"}":                        false,
	} {
		_, isRaw := adfAttribute([]byte(doc)).(json.RawMessage)
		if isRaw != canonical {
			t.Errorf("%s: canonical form %v, want %v", doc, isRaw, canonical)
		}
	}
}
