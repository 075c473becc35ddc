package deploytest

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	json "github.com/go-json-experiment/json/v1"
)

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	root := repoRoot(t)
	var dash struct {
		UID    string         `json:"uid"`
		Title  string         `json:"title"`
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(root, "deploy", "grafana", "itsm-dashboard.json")), &dash); err != nil {
		t.Fatalf("itsm-dashboard.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("dashboard: want a uid and a title")
	}
	ids := map[int]bool{}
	var exprs []string
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: wider than the 24-column grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: want the ${datasource} variable as data source", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	for _, m := range []string{
		// exported today
		"itsm_webhooks_total", "itsm_webhook_publish_seconds_bucket", "itsm_normalizer_messages_total",
		"itsm_events_published_total", "itsm_normalizer_message_seconds_bucket",
		"go_goroutines", "process_resident_memory_bytes",
		"itsm_sync_objects_total", "itsm_sync_duration_seconds_bucket", "itsm_sync_api_calls_total",
		// coming soon
		"itsm_token_refreshes_total", "itsm_dlq_messages", "itsm_normalizer_pending",
	} {
		if !regexp.MustCompile(`\b` + m + `\b`).MatchString(all) {
			t.Errorf("dashboard: no panel queries %s", m)
		}
	}
	// Counters are graphed as rates, never raw.
	for _, e := range exprs {
		for _, c := range regexp.MustCompile(`\bitsm_\w+_total\b[^)]*`).FindAllString(e, -1) {
			if !strings.Contains(e, "rate(") && !strings.Contains(e, "increase(") {
				t.Errorf("dashboard: counter graphed raw: %s", c)
			}
		}
	}
}
