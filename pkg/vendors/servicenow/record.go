package servicenow

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/jsonscan"
)

// TimeLayout is the format of every date-time of a display_value=false
// record, in UTC.
const TimeLayout = "2006-01-02 15:04:05"

// Row is one Table API record: its members as received.
type Row map[string]json.RawMessage

// DecodeRow decodes a record; it must be a JSON object. Its values are
// slices of body, read on demand (Str): body must not change while the
// Row is in use.
func DecodeRow(body []byte) (Row, error) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("%w: record is not a JSON object", itsm.ErrMalformed)
	}
	// One scan that slices the members, instead of a validating decode
	// that copies each of them: a sync maps every row. Escaped names and
	// anything the scan rejects go through the decoder, whose error names
	// the problem.
	r := make(Row, 64)
	plain := true
	end := jsonscan.Members(b, func(m jsonscan.Member) bool {
		name, ok := jsonscan.Unescaped(m.Name)
		if !ok {
			plain = false
			return false
		}
		r[string(name)] = m.Value
		return true
	})
	if plain && end == len(b) {
		return r, nil
	}
	r = nil
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", itsm.ErrMalformed, err)
	}
	return r, nil
}

// checkShape refuses a record read with sysparm_display_value=true or all:
// its references ({"display_value","link"}) or every value
// ({"display_value","value"}, typed numbers and booleans in some APIs)
// carry labels and user time zones that would map to wrong or empty
// states, priorities and dates. A display_value=true row without a
// non-empty reference cannot be told apart from a default one.
func checkShape(r Row) error {
	for name, raw := range r {
		b := bytes.TrimSpace(raw)
		if len(b) == 0 || b[0] != '{' || !bytes.Contains(b, []byte(`"display_value"`)) {
			continue
		}
		display := false
		jsonscan.Members(b, func(m jsonscan.Member) bool {
			display = string(m.Name) == `"display_value"`
			return !display
		})
		if display {
			return fmt.Errorf("%w: field %q has a display_value: the record was read with sysparm_display_value=true or all, not false", itsm.ErrMalformed, name)
		}
	}
	return nil
}

// Str is a field's value as text: a string as is, a reference's sys_id
// ({"link","value"}, or the last path segment of a link without value), a
// number or boolean as its literal, "" for null or absent.
func (r Row) Str(name string) string {
	return valueOf(r[name])
}

func valueOf(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '"':
		s, _ := jsonscan.String(b)
		return s
	case '{':
		// A reference: its members are strings; nothing nested is read,
		// so no input makes this walk more than once over its bytes.
		var value, link string
		if jsonscan.Members(b, func(m jsonscan.Member) bool {
			switch string(m.Name) {
			case `"value"`:
				value, _ = jsonscan.String(m.Value)
			case `"link"`:
				link, _ = jsonscan.String(m.Value)
			}
			return true
		}) < 0 {
			return ""
		}
		if value != "" {
			return value
		}
		if i := strings.LastIndexByte(link, '/'); i >= 0 {
			return link[i+1:]
		}
		return ""
	case 'n', '[':
		return ""
	default:
		return string(b)
	}
}

// Strings reads a JSON array of strings (an annotation); nil when absent.
func (r Row) Strings(name string) ([]string, bool) {
	raw, ok := r[name]
	if !ok {
		return nil, false
	}
	var out []string
	if json.Unmarshal(raw, &out) != nil {
		return nil, false
	}
	return out, true
}

// Time parses a date-time field; ok is false when it is empty or not in
// TimeLayout.
func (r Row) Time(name string) (time.Time, bool) {
	return parseTime(r.Str(name))
}

func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.ParseInLocation(TimeLayout, s, time.UTC); err == nil {
		return t, true
	}
	// due_date of some instances and dates of glide_date fields.
	if t, err := time.ParseInLocation("2006-01-02", s, time.UTC); err == nil {
		return t, true
	}
	return time.Time{}, false
}

func timePtr(t time.Time, ok bool) *time.Time {
	if !ok {
		return nil
	}
	return &t
}

// Bool reads "true"/"false" (and JSON booleans); def when empty.
func (r Row) Bool(name string, def bool) bool {
	switch strings.ToLower(r.Str(name)) {
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	return def
}

// modSlots bounds the milliseconds a mod count adds, below the deletion
// version's 999.
const modSlots = 499

// versionOf is a record's version: sys_updated_on plus 2 × (its mod count
// mod modSlots) milliseconds, plus one when the sync annotated the record
// (see the package documentation); sys_created_on for rows that are never
// updated (journal entries).
func versionOf(r Row) (time.Time, bool) {
	t, ok := r.Time("sys_updated_on")
	if !ok {
		t, ok = r.Time("sys_created_on")
		if !ok {
			return time.Time{}, false
		}
	}
	if n, err := strconv.Atoi(r.Str("sys_mod_count")); err == nil && n > 0 {
		t = t.Add(time.Duration(n%modSlots) * 2 * time.Millisecond)
	}
	if r.annotated() {
		t = t.Add(time.Millisecond)
	}
	return t, true
}

// annotated reports whether the sync added what the row lacks.
func (r Row) annotated() bool {
	for _, k := range []string{AnnotAuthor, AnnotTags, AnnotMembers} {
		if _, ok := r[k]; ok {
			return true
		}
	}
	return false
}

// deletionVersion is the version of a tombstone for a deletion at "at": the
// last millisecond of its second, after every write of that second.
func deletionVersion(at time.Time) time.Time {
	return at.Truncate(time.Second).Add(999 * time.Millisecond)
}

// VersionString is the version a sync gives a record (connector.Record):
// sys_updated_on and the mod count, or sys_created_on.
func VersionString(r Row) string {
	v := r.Str("sys_updated_on")
	if v == "" {
		return r.Str("sys_created_on")
	}
	if n := r.Str("sys_mod_count"); n != "" {
		return v + "#" + n
	}
	return v
}

// attributes keeps every field of a record as text (references as their
// sys_id), but those named in skip and the annotations.
func attributes(r Row, skip ...string) map[string]any {
	out := make(map[string]any, len(r))
	for k, raw := range r {
		if strings.HasPrefix(k, "_itsm") {
			continue
		}
		skipped := false
		for _, s := range skip {
			if s == k {
				skipped = true
				break
			}
		}
		if !skipped {
			out[k] = valueOf(raw)
		}
	}
	return out
}
