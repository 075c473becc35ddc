package jirasync

import (
	"errors"
	"strconv"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// A minimal scanner over JSON that encoding/json has already validated (the
// client decodes every response), so that splitting an issue into its
// records costs one pass over its bytes instead of decoding and re-encoding
// it: at 100,000 issues with embedded comments, encoding/json round trips
// were most of the worker's CPU. It never allocates for the values it
// returns (sub-slices of the input) and is bounds-checked, so malformed
// input yields an error, never a panic.

var errScan = errors.New("malformed JSON")

// span is a member of an object: its name (raw, between the quotes), where
// the member starts (its name's quote) and its value.
type span struct {
	name     []byte
	start    int
	valStart int
	valEnd   int
	value    []byte
}

// members calls fn for each member of the object b, in order; fn returning
// false stops the walk.
func members(b []byte, fn func(m span) bool) error {
	stopped := false
	end := jsonscan.Members(b, func(m jsonscan.Member) bool {
		stopped = !fn(span{name: m.Name[1 : len(m.Name)-1], start: m.Start,
			valStart: m.ValueStart, valEnd: m.ValueEnd, value: m.Value})
		return !stopped
	})
	if end < 0 && !stopped {
		return errScan
	}
	return nil
}

// elements calls fn for each element of the array b.
func elements(b []byte, fn func(v []byte) error) error {
	var err error
	if jsonscan.Elements(b, func(v []byte) bool { err = fn(v); return err == nil }) {
		return nil
	}
	if err != nil {
		return err
	}
	return errScan
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
			if string(m.name) == n {
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
			if string(m.name) == n {
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
		switch string(m.name) {
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
		switch string(m.name) {
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
