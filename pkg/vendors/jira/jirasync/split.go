package jirasync

import (
	"errors"
	"strconv"

	json "github.com/go-json-experiment/json/v1"
	"github.com/itsmhub/itsm/pkg/jsonspan"
)

// An issue is split into its records by the offsets of its members
// (pkg/jsonspan), without decoding it: the normalizer is the one that reads
// records, and a decode and re-encode of every issue here was most of the
// worker's CPU.

// span is a member of an object: its name, where the member starts (its
// name's quote) and its value.
type span struct {
	name     string
	start    int
	valStart int
	valEnd   int
	value    []byte
}

// errStop ends a walk early without an error.
var errStop = errors.New("stop")

// members calls fn for each member of the object b, in order; fn returning
// false stops the walk.
func members(b []byte, fn func(m span) bool) error {
	err := jsonspan.Members(b, func(m jsonspan.Member) error {
		if !fn(span{name: m.Name, start: m.NameStart, valStart: m.ValStart, valEnd: m.ValEnd, value: m.Value(b)}) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// elements calls fn for each element of the array b.
func elements(b []byte, fn func(v []byte) error) error {
	return jsonspan.Elements(b, func(start, end int) error { return fn(b[start:end]) })
}

// text is a JSON string or number value as Go text ("" for anything else).
// Ids and timestamps have no escapes; an escaped string takes the slow path.
func text(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	if v[0] != '"' {
		if v[0] == '-' || (v[0] >= '0' && v[0] <= '9') {
			return string(v)
		}
		return ""
	}
	raw := v[1 : len(v)-1]
	for _, c := range raw {
		if c == '\\' {
			var s string
			_ = json.Unmarshal(v, &s)
			return s
		}
	}
	return string(raw)
}

// countElements counts the elements of an array (0 for anything else).
func countElements(b []byte) int {
	n := 0
	if len(b) == 0 || b[0] != '[' {
		return 0
	}
	_ = elements(b, func([]byte) error { n++; return nil })
	return n
}

// fieldsOf reads the named members of an object (first occurrence wins).
func fieldsOf(b []byte, names ...string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(names))
	err := members(b, func(m span) bool {
		for _, n := range names {
			if m.name == n {
				if _, dup := out[n]; !dup {
					out[n] = m.value
				}
			}
		}
		return len(out) < len(names)
	})
	return out, err
}

// dropMembers is the object b without the named members.
func dropMembers(b []byte, names ...string) ([]byte, error) {
	out := make([]byte, 0, len(b))
	out = append(out, '{')
	first := true
	err := members(b, func(m span) bool {
		for _, n := range names {
			if m.name == n {
				return true
			}
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, b[m.start:m.valEnd]...)
		return true
	})
	if err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// splitIssue takes an issue as bulkfetch returns it apart: its id and
// fields.updated, the issue without fields.comment and fields.attachment
// (which travel as records of their own), the embedded comments (with the
// total Jira has, which may be more) and the attachments.
type splitIssue struct {
	id, updated   string
	body          []byte
	comments      [][]byte
	commentsTotal int
	hasComments   bool
	attachments   [][]byte
}

func split(issue []byte) (*splitIssue, error) {
	s := &splitIssue{}
	var fields span
	found := false
	if err := members(issue, func(m span) bool {
		switch m.name {
		case "id":
			s.id = text(m.value)
		case "fields":
			fields, found = m, true
		}
		return true
	}); err != nil {
		return nil, err
	}
	if s.id == "" {
		return nil, errors.New("issue without id")
	}
	if !found {
		s.body = issue
		return s, nil
	}
	var comment, attachment []byte
	if err := members(fields.value, func(m span) bool {
		switch m.name {
		case "updated":
			s.updated = text(m.value)
		case "comment":
			comment = m.value
		case "attachment":
			attachment = m.value
		}
		return true
	}); err != nil {
		return nil, err
	}
	if len(comment) > 0 && comment[0] == '{' {
		f, err := fieldsOf(comment, "comments", "total")
		if err != nil {
			return nil, err
		}
		if c, ok := f["comments"]; ok && len(c) > 0 && c[0] == '[' {
			s.hasComments = true
			if err := elements(c, func(v []byte) error { s.comments = append(s.comments, v); return nil }); err != nil {
				return nil, err
			}
			s.commentsTotal = len(s.comments)
			if t, err := strconv.Atoi(text(f["total"])); err == nil {
				s.commentsTotal = t
			}
		}
	}
	if len(attachment) > 0 && attachment[0] == '[' {
		if err := elements(attachment, func(v []byte) error { s.attachments = append(s.attachments, v); return nil }); err != nil {
			return nil, err
		}
	}
	if comment == nil && attachment == nil {
		s.body = issue
		return s, nil
	}
	trimmed, err := dropMembers(fields.value, "comment", "attachment")
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(issue)-len(fields.value)+len(trimmed))
	body = append(body, issue[:fields.valStart]...)
	body = append(body, trimmed...)
	s.body = append(body, issue[fields.valEnd:]...)
	return s, nil
}
