package jira

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/jsonscan"
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
		return renderText(b)
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

// renderText renders a valid JSON document as ADF, without its trailing
// space.
func renderText(doc []byte) string {
	dec := jsonscan.NewDecoder(doc)
	defer dec.Release()
	v, err := parseADF(&dec.Decoder, doc)
	if err != nil {
		return ""
	}
	text, _ := renderADF(v)
	return strings.TrimRightFunc(text, unicode.IsSpace)
}

// The renderer reads the document as the map a decode would give (member
// names match exactly, the last of repeated names wins, strings and numbers
// decode as they would into an any), from one pass of a decoder that keeps
// only what rendering needs: the nodes' types and content, and the raw
// bytes of the few members read by name. Decoding each document into maps
// would allocate a map per node (renderADFMap in the tests is that
// implementation; FuzzADFMatchesMapDecode holds the two equal).

// adfValue is one value of a document: an object's node, an array's
// elements, or only the kind of a scalar.
type adfValue struct {
	kind  jsontext.Kind
	node  adfNode
	elems []adfValue
}

// adfNode is the part of an ADF node the renderer reads: its type, its
// content when that is an array, and other members as slices of the
// document.
type adfNode struct {
	typ                string
	content            []adfValue
	attrs, text, marks []byte
}

// parseADF reads the decoder's next value; src is the decoder's input.
func parseADF(dec *jsontext.Decoder, src []byte) (adfValue, error) {
	switch k := dec.PeekKind(); k {
	case '{':
		n, err := parseNode(dec, src)
		return adfValue{kind: k, node: n}, err
	case '[':
		elems, err := parseElements(dec, src)
		return adfValue{kind: k, elems: elems}, err
	default:
		return adfValue{kind: k}, dec.SkipValue()
	}
}

func parseNode(dec *jsontext.Decoder, src []byte) (adfNode, error) {
	var n adfNode
	if _, err := dec.ReadToken(); err != nil {
		return n, err
	}
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return n, err
		}
		switch name.String() {
		case "type":
			n.typ = ""
			if dec.PeekKind() != '"' {
				err = dec.SkipValue()
				break
			}
			var tok jsontext.Token
			if tok, err = dec.ReadToken(); err == nil {
				n.typ = tok.String()
			}
		case "content":
			n.content = nil
			if dec.PeekKind() != '[' {
				err = dec.SkipValue()
				break
			}
			n.content, err = parseElements(dec, src)
		case "attrs":
			n.attrs, err = rawValue(dec, src)
		case "text":
			n.text, err = rawValue(dec, src)
		case "marks":
			n.marks, err = rawValue(dec, src)
		default:
			err = dec.SkipValue()
		}
		if err != nil {
			return n, err
		}
	}
	_, err := dec.ReadToken()
	return n, err
}

func parseElements(dec *jsontext.Decoder, src []byte) ([]adfValue, error) {
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var out []adfValue
	for k := dec.PeekKind(); k != ']' && k != 0; k = dec.PeekKind() {
		v, err := parseADF(dec, src)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	_, err := dec.ReadToken()
	return out, err
}

// rawValue reads the decoder's next value as a slice of src, its input.
func rawValue(dec *jsontext.Decoder, src []byte) ([]byte, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	end := int(dec.InputOffset())
	return src[end-len(v) : end : end], nil
}

// memberOf returns the last value named key of object b; nil when b is not an
// object or has no such member.
func memberOf(b []byte, key string) []byte {
	var val []byte
	eachMemberBytes(b, func(k, v []byte) {
		if string(k) == key {
			val = v
		}
	})
	return val
}

// elementsOf returns the elements of array b; nil for anything else.
func elementsOf(b []byte) [][]byte {
	var out [][]byte
	eachElement(b, func(v []byte) { out = append(out, v) })
	return out
}

// renderADF renders one value and reports whether it is a block (its own
// line) or inline (joined to its neighbours).
func renderADF(v adfValue) (string, bool) {
	switch v.kind {
	case '[':
		text, _ := renderChildren(v.elems, "\n")
		return text, true
	case '{':
		return renderNode(v.node)
	}
	return "", false
}

func renderNode(n adfNode) (string, bool) {
	typ, attrs, content := n.typ, n.attrs, n.content
	switch typ {
	case "text":
		text := scalarText(n.text)
		if href := linkHref(n.marks); href != "" && href != text {
			text += " (" + href + ")"
		}
		return text, false
	case "hardBreak":
		return "\n", false
	case "mention":
		if t := scalarText(memberOf(attrs, "text")); t != "" {
			return t, false
		}
		if id := scalarText(memberOf(attrs, "id")); id != "" {
			return "@" + id, false
		}
		return "", false
	case "emoji":
		if t := scalarText(memberOf(attrs, "text")); t != "" {
			return t, false
		}
		return scalarText(memberOf(attrs, "shortName")), false
	case "inlineCard":
		return scalarText(memberOf(attrs, "url")), false
	case "blockCard", "embedCard":
		return scalarText(memberOf(attrs, "url")), true
	case "status":
		return scalarText(memberOf(attrs, "text")), false
	case "date":
		return scalarText(memberOf(attrs, "timestamp")), false
	case "media", "mediaInline":
		return "[media]", false
	case "mediaGroup", "mediaSingle":
		text, _ := renderChildren(content, " ")
		return text, true
	case "rule":
		return "---", true
	case "bulletList":
		return renderList(content, func(int, adfNode) string { return "- " }), true
	case "orderedList":
		start := listStart(attrs)
		return renderList(content, func(i int, _ adfNode) string {
			return strconv.Itoa(start+i) + ". "
		}), true
	case "taskList":
		return renderList(content, func(_ int, item adfNode) string {
			if strings.EqualFold(scalarText(memberOf(item.attrs, "state")), "DONE") {
				return "- [x] "
			}
			return "- [ ] "
		}), true
	case "decisionList":
		return renderList(content, func(int, adfNode) string { return "- " }), true
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
		if title := scalarText(memberOf(attrs, "title")); title != "" {
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
func renderChildren(content []adfValue, sep string) (string, bool) {
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

func renderList(items []adfValue, prefix func(int, adfNode) string) string {
	lines := make([]string, 0, len(items))
	i := 0
	for _, item := range items {
		if item.kind != '{' {
			continue
		}
		p := prefix(i, item.node)
		i++
		text, _ := renderADF(item)
		// Continuation lines (nested lists, extra paragraphs) are indented
		// under the item's text.
		text = strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", len(p)))
		lines = append(lines, p+text)
	}
	return strings.Join(lines, "\n")
}

func listStart(attrs []byte) int {
	switch v := memberOf(attrs, "order"); {
	case len(v) == 0:
	case v[0] == '"':
		s, _ := unquote(v)
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 && n < 1e9 {
			return n
		}
	default:
		if f, ok := number(v); ok && f >= 0 && f < 1e9 {
			return int(f)
		}
	}
	return 1
}

// linkHref returns the target of a link mark, kept because the link is often
// the only meaningful part of the text.
func linkHref(marks []byte) string {
	for _, mk := range elementsOf(marks) {
		if typ := memberOf(mk, "type"); len(typ) == 0 || typ[0] != '"' {
			continue
		} else if s, _ := unquote(typ); s != "link" {
			continue
		}
		return scalarText(memberOf(memberOf(mk, "attrs"), "href"))
	}
	return ""
}

// scalarText is a string's or a number's text, as for a value decoded into
// an any.
func scalarText(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if v[0] == '"' {
		s, _ := unquote(v)
		return s
	}
	if f, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

// number decodes a JSON number token as json.Unmarshal decodes one into an
// any, where a number beyond float64's range is 0; false for other tokens.
func number(v []byte) (float64, bool) {
	if c := v[0]; c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return 0, true
	}
	return f, true
}
