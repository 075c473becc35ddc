package jira_test

import (
	"testing"

	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

// BenchmarkMapWebhook is the mapping's share of the normalizer's cost per
// message (see services/normalizer's BenchmarkNormalizerVsRawUpsert).
func BenchmarkMapWebhook(b *testing.B) {
	body := fixture(b, "webhooks/issue_updated_status_change_01.json")
	m := &jira.Mapping{ConnectionID: conn}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MapWebhook(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapRESTIssue(b *testing.B) {
	issues := page(b, "rest/search_v3_epic_adf_airbyte_01.json", "issues")
	m := &jira.Mapping{ConnectionID: conn}
	b.SetBytes(int64(len(issues[0])))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MapRESTAt("issue", "", issues[0], observed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapRESTComment maps an ADF comment, the most numerous record of
// a full sync.
func BenchmarkMapRESTComment(b *testing.B) {
	comments := page(b, "rest/issue_comments_v3_adf_01.json", "comments")
	m := &jira.Mapping{ConnectionID: conn}
	b.SetBytes(int64(len(comments[0])))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MapRESTAt("comment", "10001", comments[0], observed); err != nil {
			b.Fatal(err)
		}
	}
}
