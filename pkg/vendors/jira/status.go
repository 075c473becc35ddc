package jira

import (
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/itsmhub/itsm/pkg/itsm"
)

// Decision says how a mapped value was decided; recorded in vendor_attributes.
type Decision string

const (
	// DecidedCustom: the connection's own status_mapping / priority_mapping.
	DecidedCustom Decision = "custom"
	// DecidedKeyword: a keyword of the name (keywords.go).
	DecidedKeyword Decision = "keyword"
	// DecidedRank: the name's place in the site's priority scheme.
	DecidedRank Decision = "rank"
	// DecidedCategory: the Jira status category.
	DecidedCategory Decision = "category"
	// DecidedNone: nothing decided; the value is UNKNOWN.
	DecidedNone Decision = "none"
)

// MapStatus maps a Jira status name and its status category key: the
// connection's custom mapping first, then keywords of the name (they carry
// the model's definitions, so "In QA" is IN_REVIEW although Jira files it
// under "indeterminate"), then the category, else UNKNOWN. It never returns
// DELETED: that is the mapper's verdict on a deleted issue, not a name's.
func (m *Mapping) MapStatus(name, categoryKey string) (itsm.Status, Decision) {
	name = strings.TrimSpace(name)
	if m != nil {
		if s, ok := lookupFold(m.Status, name); ok && statusTarget(s) {
			return s, DecidedCustom
		}
	}
	if name != "" {
		var buf [128]byte
		if r, ok := statusMatcher.match(normalizeName(buf[:0], name)); ok {
			return statusRules[r].status, DecidedKeyword
		}
	}
	categoryKey = strings.TrimSpace(categoryKey)
	for _, c := range statusCategories {
		if strings.EqualFold(c.key, categoryKey) {
			return c.status, DecidedCategory
		}
	}
	return itsm.StatusUnknown, DecidedNone
}

// MapPriority maps a Jira priority name: the connection's custom mapping
// first, then keywords, then the name's rank in the site's priority scheme
// (PriorityScheme), else UNKNOWN (also for an empty name: no priority).
func (m *Mapping) MapPriority(name string) (itsm.Priority, Decision) {
	name = strings.TrimSpace(name)
	if name == "" {
		return itsm.PriorityUnknown, DecidedNone
	}
	if m != nil {
		if p, ok := lookupFold(m.Priority, name); ok && priorityTarget(p) {
			return p, DecidedCustom
		}
	}
	var buf [128]byte
	if r, ok := priorityMatcher.match(normalizeName(buf[:0], name)); ok {
		return priorityRules[r].priority, DecidedKeyword
	}
	if m != nil {
		if p, ok := rankPriority(m.PriorityScheme, name); ok {
			return p, DecidedRank
		}
	}
	return itsm.PriorityUnknown, DecidedNone
}

// rankPriority places name in scheme (the site's priorities, highest
// first, as Jira lists them). The top of any scheme is by definition its
// highest priority and the bottom its lowest, so the n ranks are spread
// evenly over the five levels CRITICAL(0)..INFORMATIONAL(4): rank i of n
// gets level round(i*4/(n-1)), halves rounded up; a scheme of one is
// MEDIUM. Five ranks map one to one; three give CRITICAL, MEDIUM,
// INFORMATIONAL; seven give CRITICAL, HIGH, HIGH, MEDIUM, LOW, LOW,
// INFORMATIONAL.
func rankPriority(scheme []string, name string) (itsm.Priority, bool) {
	n := len(scheme)
	for i, s := range scheme {
		if !strings.EqualFold(strings.TrimSpace(s), name) {
			continue
		}
		if n == 1 {
			return itsm.PriorityMedium, true
		}
		level := (8*i + n - 1) / (2 * (n - 1)) // round(4i/(n-1)) in integers
		return priorityLevels[level], true
	}
	return "", false
}

var priorityLevels = [5]itsm.Priority{itsm.PriorityCritical, itsm.PriorityHigh,
	itsm.PriorityMedium, itsm.PriorityLow, itsm.PriorityInformational}

// statusTarget reports whether a custom mapping may produce s: any model
// status but DELETED (empty entries fall through to the automatic mapping).
func statusTarget(s itsm.Status) bool {
	switch s {
	case itsm.StatusOpen, itsm.StatusTodo, itsm.StatusInProgress, itsm.StatusInReview,
		itsm.StatusBlocked, itsm.StatusPending, itsm.StatusResolved, itsm.StatusClosed,
		itsm.StatusCancelled, itsm.StatusUnknown:
		return true
	}
	return false
}

func priorityTarget(p itsm.Priority) bool {
	switch p {
	case itsm.PriorityCritical, itsm.PriorityHigh, itsm.PriorityMedium, itsm.PriorityLow,
		itsm.PriorityInformational, itsm.PriorityUnknown:
		return true
	}
	return false
}

// statusCategories maps Jira's category key, which unlike its name is not
// localized.
var statusCategories = [...]struct {
	key    string
	status itsm.Status
}{
	{"new", itsm.StatusTodo},
	{"indeterminate", itsm.StatusInProgress},
	{"done", itsm.StatusClosed},
}

// lookupFold finds name in a custom mapping case-insensitively. When several
// keys fold to the same name the lexically smallest wins, so the result does
// not depend on map iteration order.
func lookupFold[V any](m map[string]V, name string) (V, bool) {
	var zero V
	if len(m) == 0 || name == "" {
		return zero, false
	}
	if v, ok := m[name]; ok {
		return v, true
	}
	var (
		best  string
		val   V
		found bool
	)
	for k, v := range m {
		if strings.EqualFold(strings.TrimSpace(k), name) && (!found || k < best) {
			best, val, found = k, v, true
		}
	}
	return val, found
}

// normalizeName appends s to dst lower-cased, with fullwidth forms, Latin
// diacritics and Cyrillic ё folded ("Résolu" is "resolu", "Отменён" "отменен") and every
// run of punctuation or space turned into one space, so that "To-Do",
// "to_do" and "To Do" compare equal. Apostrophes survive for "won't",
// typographic ones included. Keywords are written in this form.
func normalizeName(dst []byte, s string) []byte {
	space := true
	for _, r := range s {
		if r >= 0xFF01 && r <= 0xFF5E { // fullwidth ASCII, as CJK input methods type it
			r -= 0xFEE0
		}
		// Fast paths first (the unicode tables cost more than the
		// matching): ASCII, basic Cyrillic, kana and CJK ideographs.
		switch {
		case r < utf8.RuneSelf:
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				dst = append(dst, byte(r))
				space = false
				continue
			}
		case r >= 'А' && r <= 'я':
			if r <= 'Я' {
				r += 'а' - 'А'
			}
			dst = utf8.AppendRune(dst, r)
			space = false
			continue
		case r >= 0x3040 && r <= 0x9FFF && r != 0x30FB: // kana, CJK (not "・")
			dst = utf8.AppendRune(dst, r)
			space = false
			continue
		}
		r = unicode.ToLower(r)
		switch {
		case r == '\'' || r == '\u2019' || r == '\u2018':
			dst = append(dst, '\'')
			space = false
		case unicode.Is(unicode.Mn, r):
			// A combining accent (decomposed input) folds away like a
			// precomposed one.
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if f := foldLetter(r); f != "" {
				dst = append(dst, f...)
			} else {
				dst = utf8.AppendRune(dst, r)
			}
			space = false
		case !space:
			dst = append(dst, ' ')
			space = true
		}
	}
	if n := len(dst); n > 0 && dst[n-1] == ' ' {
		dst = dst[:n-1]
	}
	return dst
}

// foldLetter strips the diacritics of the lower-case letters the keyword
// languages use; "" leaves r as it is.
func foldLetter(r rune) string {
	switch r {
	case 'à', 'á', 'â', 'ã', 'ä', 'å', 'ā':
		return "a"
	case 'ç':
		return "c"
	case 'è', 'é', 'ê', 'ë', 'ē':
		return "e"
	case 'ì', 'í', 'î', 'ï':
		return "i"
	case 'ñ':
		return "n"
	case 'ò', 'ó', 'ô', 'õ', 'ö', 'ø':
		return "o"
	case 'ù', 'ú', 'û', 'ü':
		return "u"
	case 'ý', 'ÿ':
		return "y"
	case 'ß':
		return "ss"
	case 'œ':
		return "oe"
	case 'æ':
		return "ae"
	case 'ё':
		return "е"
	}
	return ""
}

// keywordMatcher finds the first rule (lowest index) any of whose keywords
// occurs in a normalized name. Keywords are bucketed by a hash of their
// first two bytes, in rule order, so a name is scanned once and each
// position only meets the one or two keywords that can start there.
type keywordMatcher struct {
	atWord keywordIndex // keywords that must start a word
	inWord keywordIndex // CJK keywords: any position (no spaces in CJK)
}

type keyword struct {
	text  string
	rule  int
	whole bool // must also end a word
}

const keywordBuckets = 2048

// keywordIndex holds the keywords of bucket b in kws[start[b]:start[b+1]].
type keywordIndex struct {
	start [keywordBuckets + 1]uint16
	kws   []keyword
}

func bucket(a, b byte) int { return (int(a)*131 + int(b)) & (keywordBuckets - 1) }

func (x *keywordIndex) build(kws []keyword) {
	if len(kws) > math.MaxUint16 {
		panic("jira: too many keywords")
	}
	slices.SortStableFunc(kws, func(a, b keyword) int {
		return bucket(a.text[0], a.text[1]) - bucket(b.text[0], b.text[1])
	})
	x.kws = kws
	for _, k := range kws {
		x.start[bucket(k.text[0], k.text[1])+1]++
	}
	for b := 1; b <= keywordBuckets; b++ {
		x.start[b] += x.start[b-1]
	}
}

func (x *keywordIndex) at(s []byte, i int) []keyword {
	b := bucket(s[i], s[i+1])
	return x.kws[x.start[b]:x.start[b+1]]
}

// newKeywordMatcher indexes rules[i]'s keywords under rule i. A keyword
// ending in '*' is a stem that matches at a word start ("cancel*" finds
// "Cancelled" but not "Uncancel"); others match whole words or, with
// spaces, whole phrases ("new" finds "New", not "Renewal"); CJK keywords
// match anywhere.
func newKeywordMatcher(rules [][]string) *keywordMatcher {
	var atWord, inWord []keyword
	for i, words := range rules {
		for _, w := range words {
			k := keyword{rule: i, whole: true}
			if strings.HasSuffix(w, "*") {
				w, k.whole = strings.TrimSuffix(w, "*"), false
			}
			if norm := string(normalizeName(nil, w)); norm != w || len(w) < 2 {
				panic("jira: keyword " + w + " is not in normalized form")
			}
			k.text = w
			if r, _ := utf8.DecodeRuneInString(w); isCJK(r) {
				k.whole = false
				inWord = append(inWord, k)
			} else {
				atWord = append(atWord, k)
			}
		}
	}
	km := &keywordMatcher{}
	km.atWord.build(atWord)
	km.inWord.build(inWord)
	return km
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

// match returns the index of the first rule with a keyword in s.
func (km *keywordMatcher) match(s []byte) (int, bool) {
	best := -1
	for i := 0; i+1 < len(s); i++ {
		c := s[i]
		if c&0xC0 == 0x80 { // inside a multi-byte rune
			continue
		}
		if wordStart(s, i) {
			best = try(km.atWord.at(s, i), s, i, best)
		}
		if c >= utf8.RuneSelf {
			best = try(km.inWord.at(s, i), s, i, best)
		}
	}
	return best, best >= 0
}

func try(ks []keyword, s []byte, i, best int) int {
	for _, k := range ks {
		if best >= 0 && k.rule >= best {
			break // in rule order: nothing better follows
		}
		end := i + len(k.text)
		if end > len(s) || string(s[i:end]) != k.text {
			continue
		}
		if k.whole && !wordEnd(s, end) {
			continue
		}
		best = k.rule
	}
	return best
}

// Words end at spaces and where CJK text begins or ends: "ＱＡ中" holds the
// word "qa".
func wordStart(s []byte, i int) bool {
	if i == 0 || s[i-1] == ' ' {
		return true
	}
	if s[i-1] < utf8.RuneSelf && s[i] < utf8.RuneSelf {
		return false
	}
	r, _ := utf8.DecodeLastRune(s[:i])
	return cjkText(r)
}

func wordEnd(s []byte, end int) bool {
	if end == len(s) || s[end] == ' ' {
		return true
	}
	if s[end] < utf8.RuneSelf {
		return false
	}
	r, _ := utf8.DecodeRune(s[end:])
	return cjkText(r)
}

// cjkText: kana, CJK ideographs and Hangul syllables, scripts written
// without spaces.
func cjkText(r rune) bool {
	return r >= 0x3040 && r <= 0x9FFF || r >= 0xAC00 && r <= 0xD7AF
}

// Remap maps a stored ticket's vendor status and priority (kept in its
// vendor_attributes) again, after the connection's mapping or the site's
// priority order changed. It reports whether status or priority changed.
func (m *Mapping) Remap(t *itsm.Ticket) bool {
	attr := func(k string) string {
		s, _ := t.VendorAttributes[k].(string)
		return s
	}
	if t.VendorAttributes == nil || t.Status == itsm.StatusDeleted {
		return false
	}
	status, statusBy := m.MapStatus(attr("status"), attr("status_category"))
	priority, priorityBy := m.MapPriority(attr("priority"))
	t.VendorAttributes["status_mapped_by"] = string(statusBy)
	t.VendorAttributes["priority_mapped_by"] = string(priorityBy)
	changed := status != t.Status || priority != t.Priority
	t.Status, t.Priority = status, priority
	return changed
}
