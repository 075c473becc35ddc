package jira

import "testing"

// TestKeywordTables: every keyword is in normalized form (newKeywordMatcher
// panics at init otherwise) and appears once: a keyword repeated in a later
// rule could never decide anything there. ("ferme" and "ferme*" differ: a
// whole word and a stem.)
func TestKeywordTables(t *testing.T) {
	check := func(table string, rules [][]string) {
		seen := map[string]int{}
		for i, words := range rules {
			for _, w := range words {
				if prev, dup := seen[w]; dup {
					t.Errorf("%s: %q in rule %d repeats rule %d", table, w, i, prev)
				}
				seen[w] = i
			}
		}
		if len(seen) == 0 {
			t.Errorf("%s: no keywords", table)
		}
	}
	check("status", ruleWords(statusRules[:], func(r statusRule) []string { return r.words }))
	check("priority", ruleWords(priorityRules[:], func(r priorityRule) []string { return r.words }))
}
