package jira

import "strings"

// ADF turns plain text into an Atlassian Document Format document, the
// shape REST v3 writes take for descriptions and comment bodies: blank lines
// separate paragraphs, single newlines become hard breaks. PlainText reads
// it back as the same lines (paragraphs, like every ADF block, end up one
// newline apart).
func ADF(text string) map[string]any {
	blocks := []any{}
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(para) == "" {
			continue
		}
		var inline []any
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				inline = append(inline, map[string]any{"type": "hardBreak"})
			}
			if line != "" {
				inline = append(inline, map[string]any{"type": "text", "text": line})
			}
		}
		blocks = append(blocks, map[string]any{"type": "paragraph", "content": inline})
	}
	return map[string]any{"type": "doc", "version": 1, "content": blocks}
}
