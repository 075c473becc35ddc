package jira_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/itsmhub/itsm/pkg/fixtures"
	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/vendors/jira"
)

func FuzzMapWebhook(f *testing.F) {
	for _, dir := range []string{"webhooks", "rest"} {
		files, err := filepath.Glob(filepath.Join(fixtures.JiraDir(), dir, "*.json"))
		if err != nil || len(files) == 0 {
			f.Fatalf("no fixtures in %s: %v", dir, err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"webhookEvent":"comment_deleted","timestamp":1,"issue":{"id":1},"comment":{"id":2}}`))
	f.Add([]byte(`{"webhookEvent":"jira:issue_deleted","timestamp":"-62135596800000","issue":{"id":"1"}}`))

	m := &jira.Mapping{ConnectionID: "fuzz"}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := m.MapWebhook(body)
		if err != nil {
			if !errors.Is(err, itsm.ErrMalformed) && !errors.Is(err, itsm.ErrNotAnEvent) && !errors.Is(err, itsm.ErrUnsupportedEvent) {
				t.Fatalf("error outside the contract: %v", err)
			}
			if recs != nil {
				t.Fatalf("records with error %v", err)
			}
			return
		}
		if len(recs) == 0 {
			t.Fatal("nil error without records")
		}
		for _, r := range recs {
			if r.ID == "" || r.Version.IsZero() || r.Object == nil {
				t.Fatalf("incomplete record %+v", r)
			}
		}
	})
}
