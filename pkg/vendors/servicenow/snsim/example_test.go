package snsim_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

// A push body and the X-Signature header a receiver must verify over the
// raw bytes.
func ExampleSign() {
	body := []byte(`{"table":"incident","sys_id":"9ef81de2db0d6090d7055268dc961978","operation":"update","sys_updated_on":"2026-01-15 09:30:00"}`)
	fmt.Println(snsim.Sign("connection-secret", body))
	// Output: sha256=0bb22d51c09ecff66fa3912a3ec79b44f6814b92d39c8f9ab09600de939f46a0
}

// How a connector test drives an instance.
func Example() {
	clk := snsim.NewManualClock(time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC))
	srv, err := snsim.NewServer(snsim.Options{Seed: 1, Clock: clk})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	in := srv.Default()

	// The connector is configured with srv.BaseURL("") and basic auth
	// itsm.integration / integration-password (or OAuth with snsim-client).
	req, _ := http.NewRequest(http.MethodGet, srv.BaseURL("")+"/api/now/table/incident?sysparm_limit=100", nil)
	req.SetBasicAuth("itsm.integration", "integration-password")

	// Pushes go where the business rule would post them.
	_, _ = in.Subscribe(snsim.Subscription{Tables: []string{"incident"}, URL: "http://127.0.0.1:8080/webhooks/servicenow/conn-1", Secret: "push-secret"})
	rec, _ := in.Insert("incident", snsim.Record{"short_description": "Mail down", "impact": "1", "urgency": "1"}, snsim.WriteOptions{})
	clk.Advance(time.Minute)
	_, _ = in.Update("incident", rec["sys_id"], snsim.Record{"state": "2"}, snsim.WriteOptions{})
	_, _ = in.AddJournal("incident", rec["sys_id"], "work_notes", "looking", snsim.WriteOptions{As: "admin"})
	_ = in.Delete("incident", rec["sys_id"], snsim.WriteOptions{SkipWorkflow: true}) // no push; sys_audit_delete has it
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.WaitIdle(ctx)
	_ = req
}
