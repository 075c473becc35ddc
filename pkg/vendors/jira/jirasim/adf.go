package jirasim

import (
	"strconv"
	"strings"
)

// Atlassian Document Format helpers. REST v3 returns ADF; webhooks (v2
// representation) carry wiki markup, produced here by adfToWiki.

func adfDoc(content ...any) map[string]any {
	if content == nil {
		content = []any{}
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

func adfPara(inline ...any) map[string]any {
	return map[string]any{"type": "paragraph", "content": inline}
}

func adfText(s string, marks ...any) map[string]any {
	n := map[string]any{"type": "text", "text": s}
	if len(marks) > 0 {
		n["marks"] = marks
	}
	return n
}

func markStrong() map[string]any { return map[string]any{"type": "strong"} }

func markLink(href string) map[string]any {
	return map[string]any{"type": "link", "attrs": map[string]any{"href": href}}
}

func adfMention(accountID, name string) map[string]any {
	return map[string]any{"type": "mention", "attrs": map[string]any{"id": accountID, "text": "@" + name, "accessLevel": ""}}
}

func adfEmoji(short, id, text string) map[string]any {
	return map[string]any{"type": "emoji", "attrs": map[string]any{"shortName": short, "id": id, "text": text}}
}

func adfHardBreak() map[string]any { return map[string]any{"type": "hardBreak"} }

func adfList(kind string, items ...string) map[string]any {
	li := make([]any, len(items))
	for i, it := range items {
		li[i] = map[string]any{"type": "listItem", "content": []any{adfPara(adfText(it))}}
	}
	n := map[string]any{"type": kind, "content": li}
	if kind == "orderedList" {
		n["attrs"] = map[string]any{"order": 1}
	}
	return n
}

func adfCode(lang, code string) map[string]any {
	n := map[string]any{"type": "codeBlock", "content": []any{adfText(code)}}
	if lang != "" {
		n["attrs"] = map[string]any{"language": lang}
	}
	return n
}

func adfHeading(level int, s string) map[string]any {
	return map[string]any{"type": "heading", "attrs": map[string]any{"level": level}, "content": []any{adfText(s)}}
}

// textToADF turns plain text (control endpoints, tests) into a document:
// blank lines separate paragraphs, single newlines become hard breaks.
func textToADF(s string) map[string]any {
	var blocks []any
	for _, para := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		var inl []any
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				inl = append(inl, adfHardBreak())
			}
			if line != "" {
				inl = append(inl, adfText(line))
			}
		}
		blocks = append(blocks, adfPara(inl...))
	}
	return adfDoc(blocks...)
}

// adfToWiki renders a document as Jira wiki markup, which is what the v2
// representation (and so webhook bodies) carry for rich-text fields.
func adfToWiki(doc map[string]any) string {
	if doc == nil {
		return ""
	}
	var b strings.Builder
	wikiBlocks(&b, children(doc), "")
	return strings.TrimRight(b.String(), "\n")
}

func children(n map[string]any) []map[string]any {
	raw, _ := n["content"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, c := range raw {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func attr(n map[string]any, k string) any {
	a, _ := n["attrs"].(map[string]any)
	return a[k]
}

func wikiBlocks(b *strings.Builder, blocks []map[string]any, listPrefix string) {
	for i, n := range blocks {
		if i > 0 && listPrefix == "" {
			b.WriteString("\n")
		}
		switch n["type"] {
		case "paragraph":
			wikiInline(b, children(n))
			b.WriteString("\n")
		case "heading":
			lvl := 1
			switch v := attr(n, "level").(type) {
			case int:
				lvl = v
			case float64:
				lvl = int(v)
			}
			b.WriteString("h" + strconv.Itoa(lvl) + ". ")
			wikiInline(b, children(n))
			b.WriteString("\n")
		case "bulletList", "orderedList":
			mark := "*"
			if n["type"] == "orderedList" {
				mark = "#"
			}
			for _, li := range children(n) {
				for _, c := range children(li) {
					if c["type"] == "bulletList" || c["type"] == "orderedList" {
						wikiBlocks(b, []map[string]any{c}, listPrefix+mark)
						continue
					}
					b.WriteString(listPrefix + mark + " ")
					wikiInline(b, children(c))
					b.WriteString("\n")
				}
			}
		case "codeBlock":
			lang, _ := attr(n, "language").(string)
			if lang != "" {
				b.WriteString("{code:" + lang + "}")
			} else {
				b.WriteString("{code}")
			}
			for _, c := range children(n) {
				s, _ := c["text"].(string)
				b.WriteString(s)
			}
			b.WriteString("{code}\n")
		case "blockquote":
			b.WriteString("{quote}")
			var inner strings.Builder
			wikiBlocks(&inner, children(n), "")
			b.WriteString(strings.TrimRight(inner.String(), "\n"))
			b.WriteString("{quote}\n")
		case "rule":
			b.WriteString("----\n")
		default:
			wikiBlocks(b, children(n), listPrefix)
		}
	}
}

func wikiInline(b *strings.Builder, nodes []map[string]any) {
	for _, n := range nodes {
		switch n["type"] {
		case "text":
			s, _ := n["text"].(string)
			marks, _ := n["marks"].([]any)
			for _, m := range marks {
				mm, _ := m.(map[string]any)
				switch mm["type"] {
				case "strong":
					s = "*" + s + "*"
				case "em":
					s = "_" + s + "_"
				case "code":
					s = "{{" + s + "}}"
				case "strike":
					s = "-" + s + "-"
				case "link":
					href, _ := attr(mm, "href").(string)
					s = "[" + s + "|" + href + "]"
				}
			}
			b.WriteString(s)
		case "hardBreak":
			b.WriteString("\n")
		case "mention":
			id, _ := attr(n, "id").(string)
			b.WriteString("[~accountid:" + id + "]")
		case "emoji":
			if s, _ := attr(n, "text").(string); s != "" {
				b.WriteString(s)
			} else if s, _ := attr(n, "shortName").(string); s != "" {
				b.WriteString(s)
			}
		case "inlineCard":
			u, _ := attr(n, "url").(string)
			b.WriteString("[" + u + "|" + u + "|smart-link]")
		default:
			wikiInline(b, children(n))
		}
	}
}
