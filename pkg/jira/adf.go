package jira

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"

	json "github.com/go-json-experiment/json/v1"
)

// PlainText renders a Jira text value as readable plain text. Webhooks (API
// v2) send wiki markup or plain strings, returned as they are; REST v3 sends
// Atlassian Document Format, rendered per JIRA.md §7. null, invalid JSON and
// anything else unrenderable give "".
func PlainText(v json.RawMessage) string {
	b := bytes.TrimSpace(v)
	if len(b) == 0 || !json.Valid(b) {
		return ""
	}
	switch b[0] {
	case '"':
		var s string
		_ = json.Unmarshal(b, &s)
		return s
	case '{', '[':
		var doc any
		// Only number-range errors are possible here; the rest of the document
		// is still decoded and worth rendering.
		_ = json.Unmarshal(b, &doc)
		text, _ := renderADF(doc)
		return strings.TrimRightFunc(text, unicode.IsSpace)
	case 'n':
		return ""
	default:
		return string(b)
	}
}

// adfBlocks are rendered on lines of their own even when empty, so that
// paragraph spacing survives.
var adfBlocks = [...]string{
	"doc", "paragraph", "heading", "blockquote", "codeBlock", "panel", "expand", "nestedExpand",
	"rule", "bulletList", "orderedList", "taskList", "decisionList", "listItem", "taskItem",
	"decisionItem", "table", "tableRow", "mediaSingle", "mediaGroup", "blockCard", "embedCard",
	"layoutSection", "layoutColumn", "bodiedExtension", "extension",
}

func isADFBlock(typ string) bool {
	for _, b := range adfBlocks {
		if b == typ {
			return true
		}
	}
	return false
}

// renderADF renders one node and reports whether it is a block (its own
// line) or inline (joined to its neighbours).
func renderADF(v any) (string, bool) {
	switch n := v.(type) {
	case []any:
		text, _ := renderChildren(n, "\n")
		return text, true
	case map[string]any:
		return renderNode(n)
	}
	return "", false
}

func renderNode(n map[string]any) (string, bool) {
	typ, _ := n["type"].(string)
	attrs, _ := n["attrs"].(map[string]any)
	content, _ := n["content"].([]any)
	switch typ {
	case "text":
		text := scalarText(n["text"])
		if href := linkHref(n["marks"]); href != "" && href != text {
			text += " (" + href + ")"
		}
		return text, false
	case "hardBreak":
		return "\n", false
	case "mention":
		if t := scalarText(attrs["text"]); t != "" {
			return t, false
		}
		if id := scalarText(attrs["id"]); id != "" {
			return "@" + id, false
		}
		return "", false
	case "emoji":
		if t := scalarText(attrs["text"]); t != "" {
			return t, false
		}
		return scalarText(attrs["shortName"]), false
	case "inlineCard":
		return scalarText(attrs["url"]), false
	case "blockCard", "embedCard":
		return scalarText(attrs["url"]), true
	case "status":
		return scalarText(attrs["text"]), false
	case "date":
		return scalarText(attrs["timestamp"]), false
	case "media", "mediaInline":
		return "[media]", false
	case "mediaGroup", "mediaSingle":
		text, _ := renderChildren(content, " ")
		return text, true
	case "rule":
		return "---", true
	case "bulletList":
		return renderList(content, func(int, map[string]any) string { return "- " }), true
	case "orderedList":
		start := listStart(attrs)
		return renderList(content, func(i int, _ map[string]any) string {
			return strconv.Itoa(start+i) + ". "
		}), true
	case "taskList":
		return renderList(content, func(_ int, item map[string]any) string {
			if a, _ := item["attrs"].(map[string]any); strings.EqualFold(scalarText(a["state"]), "DONE") {
				return "- [x] "
			}
			return "- [ ] "
		}), true
	case "decisionList":
		return renderList(content, func(int, map[string]any) string { return "- " }), true
	case "table":
		rows := make([]string, 0, len(content))
		for _, r := range content {
			if text, _ := renderADF(r); text != "" {
				rows = append(rows, text)
			}
		}
		return strings.Join(rows, "\n"), true
	case "tableRow":
		cells := make([]string, 0, len(content))
		for _, c := range content {
			text, _ := renderADF(c)
			// A cell's paragraphs must stay on the row's line.
			cells = append(cells, strings.Join(strings.Fields(text), " "))
		}
		return strings.Join(cells, "\t"), true
	case "expand", "nestedExpand":
		text, _ := renderChildren(content, "\n")
		if title := scalarText(attrs["title"]); title != "" {
			text = title + "\n" + text
		}
		return text, true
	}
	// doc, paragraph, heading, blockquote, codeBlock, panel, list items and
	// node types ADF may add later: their content in document order.
	text, hasBlock := renderChildren(content, "\n")
	return text, hasBlock || isADFBlock(typ)
}

// renderChildren concatenates runs of inline children and puts each block
// child on its own line (sep), so mixed content reads naturally.
func renderChildren(content []any, sep string) (string, bool) {
	var (
		parts    []string
		line     strings.Builder
		inLine   bool
		hasBlock bool
	)
	for _, c := range content {
		text, block := renderADF(c)
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

func renderList(items []any, prefix func(int, map[string]any) string) string {
	lines := make([]string, 0, len(items))
	i := 0
	for _, it := range items {
		item, ok := it.(map[string]any)
		if !ok {
			continue
		}
		p := prefix(i, item)
		i++
		text, _ := renderADF(item)
		// Continuation lines (nested lists, extra paragraphs) are indented
		// under the item's text.
		text = strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", len(p)))
		lines = append(lines, p+text)
	}
	return strings.Join(lines, "\n")
}

func listStart(attrs map[string]any) int {
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
func linkHref(marks any) string {
	list, _ := marks.([]any)
	for _, mk := range list {
		m, _ := mk.(map[string]any)
		if t, _ := m["type"].(string); t != "link" {
			continue
		}
		a, _ := m["attrs"].(map[string]any)
		return scalarText(a["href"])
	}
	return ""
}

func scalarText(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	}
	return ""
}
