package jira_test

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// corpusRow is one line of testdata/mapping_corpus/*.txt: fields separated
// by '|', '#' starts a comment line.
type corpusRow struct {
	line   int
	fields []string
}

func readCorpus(t *testing.T, name string, fields int) []corpusRow {
	t.Helper()
	f, err := os.Open("testdata/mapping_corpus/" + name)
	require.NoError(t, err)
	defer f.Close()
	var rows []corpusRow
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "|")
		require.Len(t, parts, fields, "%s:%d: %q", name, n, line)
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		key := strings.ToLower(parts[0])
		require.NotEmpty(t, key, "%s:%d", name, n)
		if prev, dup := seen[key]; dup {
			t.Fatalf("%s:%d: %q repeats line %d", name, n, parts[0], prev)
		}
		seen[key] = n
		rows = append(rows, corpusRow{line: n, fields: parts})
	}
	require.NoError(t, sc.Err())
	return rows
}

func parseAllowed[T any](t *testing.T, where, list string, parse func(string) (T, error)) []T {
	t.Helper()
	var out []T
	for _, s := range strings.Split(list, ",") {
		v, err := parse(strings.TrimSpace(s))
		require.NoError(t, err, where)
		out = append(out, v)
	}
	require.NotEmpty(t, out, where)
	return out
}

// TestMappingCorpus maps every name of the corpus without a custom mapping
// and checks the value is one the model's definitions allow for it, and
// that it was decided the way the corpus says: a keyword of the name (then
// the name alone, without its category, maps the same) or the category.
func TestMappingCorpus(t *testing.T) {
	statuses := readCorpus(t, "statuses.txt", 5)
	priorities := readCorpus(t, "priorities.txt", 4)
	t.Logf("corpus: %d statuses, %d priorities", len(statuses), len(priorities))
	require.GreaterOrEqual(t, len(statuses), 150, "status corpus too small")
	require.GreaterOrEqual(t, len(priorities), 80, "priority corpus too small")

	m := &jira.Mapping{}
	langs := map[string]bool{}
	for _, r := range statuses {
		name, category, src := r.fields[0], r.fields[1], r.fields[4]
		where := "statuses.txt:" + strconv.Itoa(r.line) + " " + name
		allowed := parseAllowed(t, where, r.fields[2], itsm.ParseStatus)
		require.NotContains(t, allowed, itsm.StatusDeleted, where)
		want := jira.Decision(r.fields[3])
		require.Contains(t, []jira.Decision{jira.DecidedKeyword, jira.DecidedCategory}, want, where)
		langs[lang(src)] = true

		got, how := m.MapStatus(name, category)
		if !slices.Contains(allowed, got) || how != want {
			t.Errorf("%s (category %q): got %s by %s, want one of %v by %s", where, category, got, how, allowed, want)
			continue
		}
		if want == jira.DecidedKeyword {
			alone, how := m.MapStatus(name, "")
			require.Equal(t, got, alone, "%s: the keyword decides, not the category", where)
			require.Equal(t, jira.DecidedKeyword, how, where)
		}
	}
	for _, r := range priorities {
		name, src := r.fields[0], r.fields[3]
		where := "priorities.txt:" + strconv.Itoa(r.line) + " " + name
		allowed := parseAllowed(t, where, r.fields[1], itsm.ParsePriority)
		want := jira.Decision(r.fields[2])
		langs[lang(src)] = true
		got, how := m.MapPriority(name)
		if !slices.Contains(allowed, got) || how != want {
			t.Errorf("%s: got %s by %s, want one of %v by %s", where, got, how, allowed, want)
		}
	}
	t.Logf("languages: %d", len(langs))
	require.GreaterOrEqual(t, len(langs), 6, "languages in the corpus: %v", langs)
}

// lang reads the language from a source tag: "l10n-de", "common-de" → de;
// untagged sources are English.
func lang(src string) string {
	if i := strings.Index(src, "-"); i >= 0 && (strings.HasPrefix(src, "l10n-") || strings.HasPrefix(src, "common-")) {
		return src[i+1:]
	}
	return "en"
}

// FuzzMapNames checks what must hold for any name, seeded with the corpus:
// results are model values (never DELETED or BACKLOG), UNKNOWN exactly when
// nothing decided, a keyword decides regardless of the category, and case
// does not matter.
func FuzzMapNames(f *testing.F) {
	for _, file := range []string{"statuses.txt", "priorities.txt"} {
		b, err := os.ReadFile("testdata/mapping_corpus/" + file)
		require.NoError(f, err)
		for _, line := range strings.Split(string(b), "\n") {
			if name, _, ok := strings.Cut(line, "|"); ok && !strings.HasPrefix(line, "#") {
				f.Add(strings.TrimSpace(name), "indeterminate")
			}
		}
	}
	m := &jira.Mapping{PriorityScheme: []string{"Rot", "Gelb", "Grün"}}
	f.Fuzz(func(t *testing.T, name, category string) {
		s, how := m.MapStatus(name, category)
		require.Contains(t, itsm.Statuses, s)
		require.NotEqual(t, itsm.StatusDeleted, s)
		require.NotEqual(t, itsm.Status("BACKLOG"), s)
		require.Equal(t, s == itsm.StatusUnknown, how == jira.DecidedNone, "%s by %s", s, how)
		if how == jira.DecidedKeyword {
			alone, _ := m.MapStatus(name, "")
			require.Equal(t, s, alone)
		}
		p, how := m.MapPriority(name)
		require.Contains(t, itsm.Priorities, p)
		require.Equal(t, p == itsm.PriorityUnknown, how == jira.DecidedNone, "%s by %s", p, how)

		upper := strings.ToUpper(name)
		if utf8.ValidString(name) && strings.ToLower(upper) == strings.ToLower(name) {
			us, _ := m.MapStatus(upper, category)
			require.Equal(t, s, us, "upper case %q", upper)
			up, _ := m.MapPriority(upper)
			require.Equal(t, p, up, "upper case %q", upper)
		}
	})
}

// TestWebhookMapsByDefinitions: a delivery's status and priority go through
// the same steps, the connection's priority scheme included.
func TestWebhookMapsByDefinitions(t *testing.T) {
	body := fixture(t, "webhooks/issue_updated_status_change_01.json")
	for _, tc := range []struct {
		status, priority string
		m                *jira.Mapping
		want             itsm.Status
		wantP            itsm.Priority
	}{
		{"In QA", "Критический", &jira.Mapping{}, itsm.StatusInReview, itsm.PriorityCritical},
		{"Backlog", "Sev 1", &jira.Mapping{}, itsm.StatusTodo, itsm.PriorityCritical},
		{"Declined", "3 - Moderate", &jira.Mapping{}, itsm.StatusCancelled, itsm.PriorityMedium},
		{"Phase 3", "Gelb", &jira.Mapping{PriorityScheme: []string{"Rot", "Gelb", "Grün"}}, itsm.StatusInProgress, itsm.PriorityMedium},
		{"Phase 3", "Gelb", &jira.Mapping{}, itsm.StatusInProgress, itsm.PriorityUnknown},
		{"Phase 3", "Gelb", &jira.Mapping{
			Status:   map[string]itsm.Status{"PHASE 3": itsm.StatusPending},
			Priority: map[string]itsm.Priority{"gelb": itsm.PriorityLow},
		}, itsm.StatusPending, itsm.PriorityLow},
	} {
		b := bytes.ReplaceAll(body, []byte(`"name": "In Progress"`), []byte(`"name": "`+tc.status+`"`))
		b = bytes.ReplaceAll(b, []byte(`"name": "Medium"`), []byte(`"name": "`+tc.priority+`"`))
		tc.m.ConnectionID = conn
		_, tk := oneTicket(t)(tc.m.MapWebhook(b))
		require.Equal(t, tc.want, tk.Status, "%s/%s", tc.status, tc.priority)
		require.Equal(t, tc.wantP, tk.Priority, "%s/%s", tc.status, tc.priority)
		require.Equal(t, tc.status, tk.VendorAttributes["status"], "the vendor's own value is kept")
		require.Equal(t, tc.priority, tk.VendorAttributes["priority"])
	}
}
