package snsim

import (
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Rendering a record per sysparm_display_value (SERVICENOW.md §2):
//
//	false (default): values as stored; references {"link","value"}; dates UTC
//	true:  display values: choice labels, dates in the caller's time zone,
//	       references {"display_value","link"} (no value)
//	all:   every field {"display_value","value"}, references add "link"
//
// sysparm_exclude_reference_link drops "link" (a bare string when that
// leaves one member).

type dvMode uint8

const (
	dvFalse dvMode = iota
	dvTrue
	dvAll
)

type field struct {
	key  string    // output name ("assigned_to.email" when dot-walked)
	path []*column // resolved columns
}

type renderer struct {
	in          *Inst
	mode        dvMode
	excludeLink bool
	fields      []field // nil = every column of the table
	tz          *time.Location
	base        string            // links' base when not the instance URL (LinksFromRequest)
	prefixes    map[string]string // link prefixes for base, by table
}

func quote(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

// fieldsOf resolves sysparm_fields; unknown fields are left out, as the
// platform does, and a field named twice comes once.
func (in *Inst) fieldsOf(sc *schema, list string) []field {
	if strings.TrimSpace(list) == "" {
		return nil
	}
	out := []field{}
	seen := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if seen[f] {
			continue
		}
		seen[f] = true
		if p := in.resolvePath(sc, f); p != nil {
			out = append(out, field{key: f, path: p})
		}
	}
	return out
}

// record appends one record's JSON object.
func (rd *renderer) record(b []byte, sc *schema, r *record) []byte {
	b = append(b, '{')
	if rd.fields == nil {
		for i, c := range sc.cols {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, c.quoted...)
			b = rd.value(b, r, c, r.get(c))
		}
	} else {
		for i, f := range rd.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = quote(b, f.key)
			b = append(b, ':')
			last, v := rd.in.walk(r, f.path)
			b = rd.value(b, last, f.path[len(f.path)-1], v)
		}
	}
	return append(b, '}')
}

// walk follows a dot-walk path and returns the last record (nil when the
// chain breaks) and the value.
func (in *Inst) walk(r *record, path []*column) (*record, string) {
	for i, c := range path {
		v := r.get(c)
		if i == len(path)-1 {
			return r, v
		}
		_, next := in.deref(c.ref, v)
		if next == nil {
			return nil, ""
		}
		r = next
	}
	return nil, ""
}

// link appends "link":"<instance>/api/now/table/<table>/<sys_id>" without
// building the URL string: references are most of a page's allocations.
func (rd *renderer) link(b []byte, c *column, v string) []byte {
	b = append(b, `"link":`...)
	if rd.base == "" {
		b = append(b, rd.in.refPrefix[c.ref]...)
	} else {
		p, ok := rd.prefixes[c.ref]
		if !ok {
			q := quote(nil, rd.base+"/api/now/table/"+c.ref+"/")
			p = string(q[:len(q)-1])
			if rd.prefixes == nil {
				rd.prefixes = map[string]string{}
			}
			rd.prefixes[c.ref] = p
		}
		b = append(b, p...)
	}
	start := len(b) // append the quoted value, then drop its opening quote
	b = quote(b, v)
	return append(b[:start], b[start+1:]...)
}

// value appends one field's value; r is the record holding column c (nil
// when a dot-walk broke).
func (rd *renderer) value(b []byte, r *record, c *column, v string) []byte {
	switch rd.mode {
	case dvFalse:
		if c.kind == kRef && v != "" && !rd.excludeLink {
			b = rd.link(append(b, '{'), c, v)
			b = append(b, `,"value":`...)
			return append(quote(b, v), '}')
		}
		if c.kind == kJournal {
			v = ""
		}
		return quote(b, v)
	case dvTrue:
		d := rd.display(r, c, v)
		if c.kind == kRef && v != "" && !rd.excludeLink {
			b = append(b, `{"display_value":`...)
			b = rd.link(append(quote(b, d), ','), c, v)
			return append(b, '}')
		}
		return quote(b, d)
	default:
		d := rd.display(r, c, v)
		if c.kind == kJournal {
			v = d
		}
		b = append(b, `{"display_value":`...)
		b = quote(b, d)
		if c.kind == kRef && v != "" && !rd.excludeLink {
			b = rd.link(append(b, ','), c, v)
		}
		b = append(b, `,"value":`...)
		return append(quote(b, v), '}')
	}
}

// display is a field's display value.
func (rd *renderer) display(r *record, c *column, v string) string {
	switch c.kind {
	case kChoice:
		for _, ch := range c.choices {
			if ch.Value == v {
				return ch.Label
			}
		}
		return v
	case kDateTime:
		if v == "" {
			return ""
		}
		t, err := time.Parse(snTime, v)
		if err != nil {
			return v
		}
		return t.In(rd.tz).Format(snTime)
	case kRef:
		sc, ref := rd.in.deref(c.ref, v)
		if ref == nil {
			return v
		}
		if dc := sc.col(sc.display); dc != nil {
			return ref.get(dc)
		}
		return v
	case kJournal:
		if r == nil {
			return ""
		}
		return rd.journalBlob(r, c.name)
	}
	return v
}

// journalBlob is what a task's comments / work_notes field reads as with
// display values: the entries, newest first, each headed by time, author
// and kind. (The exact layout is UNCONFIRMED; it is one text blob.)
func (rd *renderer) journalBlob(r *record, element string) string {
	entries := rd.in.d.journal[r.id]
	if len(entries) == 0 {
		return ""
	}
	jt := rd.in.d.tbl("sys_journal_field").sc
	el, val, by, on := jt.col("element"), jt.col("value"), jt.col("sys_created_by"), jt.col("sys_created_on")
	var b strings.Builder
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		kind := e.get(el)
		if element != "comments_and_work_notes" && kind != element {
			continue
		}
		label := "Additional comments"
		if kind == "work_notes" {
			label = "Work notes"
		}
		t, _ := time.Parse(snTime, e.get(on))
		b.WriteString(t.In(rd.tz).Format(snTime) + " - " + rd.in.userDisplay(e.get(by)) + " (" + label + ")\n")
		b.WriteString(e.get(val) + "\n\n")
	}
	return b.String()
}

// userDisplay maps a user_name to the user's name.
func (in *Inst) userDisplay(userName string) string {
	t := in.d.tbl("sys_user")
	un, name := t.sc.col("user_name"), t.sc.col("name")
	for _, u := range t.rows {
		if u.get(un) == userName {
			return u.get(name)
		}
	}
	return userName
}
