package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	json "github.com/go-json-experiment/json/v1"
)

const ticketsHelp = `Usage:
  itsm tickets create --connection ID [--project KEY | --project-id ID] --name NAME
                      [--description TEXT] [--type TYPE] [--priority P] [--assignee USER_ID]
                      [--tags a,b] [--due 2026-03-01] [--idempotency-key KEY]
                          create a ticket at the connection's vendor; prints the stored ticket
                          (Jira needs a project; ServiceNow has none, --type names its table)
  itsm tickets update --id TICKET_ID [--name NAME] [--description TEXT] [--priority P]
                      [--assignee USER_ID] [--tags a,b] [--due DATE] [--status STATUS]
                          change a ticket (status through the vendor's workflow)
  itsm tickets comment --id TICKET_ID --body TEXT [--internal]
                          comment on a ticket (--internal: a ServiceNow work note)

They call the platform's API as an organization: --url (default ITSM_API_URL, else
http://127.0.0.1:8080) with the API key in ITSM_API_KEY (never a flag: flags show in ps).
`

func runTickets(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 {
		return usagef("want create, update or comment")
	}
	fs := flag.NewFlagSet("tickets "+args[0], flag.ContinueOnError)
	apiURL := fs.String("url", "", "the platform's base URL")
	var (
		conn, project, projectID, name, desc, typ, prio, assignee, tags, due, idemKey, id, status, body string
	)
	str := func(p *string, flagName, help string) { fs.StringVar(p, flagName, "", help) }
	var internal bool
	var method, path string
	var required []string
	fields := map[string]*string{}
	switch args[0] {
	case "create":
		str(&conn, "connection", "connection id")
		str(&project, "project", "the vendor's project key")
		str(&projectID, "project-id", "ITSM project id")
		str(&typ, "type", "the vendor's ticket type")
		str(&idemKey, "idempotency-key", "a retry with the same key never creates a second ticket")
		method, path, required = http.MethodPost, "/v1/itsm/tickets", []string{"connection", "name"}
		fields = map[string]*string{"connection_id": &conn, "project_key": &project, "project_id": &projectID, "type": &typ}
	case "update":
		str(&id, "id", "ticket id")
		str(&status, "status", "ITSM status")
		required = []string{"id"}
		fields = map[string]*string{"status": &status}
	case "comment":
		str(&id, "id", "ticket id")
		str(&body, "body", "comment text")
		fs.BoolVar(&internal, "internal", false, "an internal note only agents see (ServiceNow work notes)")
		required = []string{"id", "body"}
		fields = map[string]*string{"body": &body}
	default:
		return usagef("unknown tickets command %q", args[0])
	}
	if args[0] != "comment" {
		str(&name, "name", "summary")
		str(&desc, "description", "plain text")
		str(&prio, "priority", "CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL")
		str(&assignee, "assignee", "ITSM user id")
		str(&tags, "tags", "comma-separated")
		str(&due, "due", "due date")
		for k, v := range map[string]*string{"name": &name, "description": &desc, "priority": &prio, "assigned_user_id": &assignee, "due_date": &due} {
			fields[k] = v
		}
	}
	if err := parse(fs, args[1:], required...); err != nil {
		return err
	}
	req := map[string]any{}
	for k, v := range fields {
		if *v != "" {
			req[k] = *v
		}
	}
	if tags != "" {
		req["tags"] = strings.Split(tags, ",")
	}
	if internal {
		req["internal"] = true
	}
	switch args[0] {
	case "update":
		method, path = http.MethodPatch, "/v1/itsm/tickets/"+id
		if len(req) == 0 {
			return usagef("nothing to change")
		}
	case "comment":
		method, path = http.MethodPost, "/v1/itsm/tickets/"+id+"/comments"
	}
	base := *apiURL
	if base == "" {
		base, _ = env.getenv("ITSM_API_URL")
	}
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	key, _ := env.getenv("ITSM_API_KEY")
	if key == "" {
		return usagef("ITSM_API_KEY is required")
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	hreq.Header.Set("X-API-Key", key)
	hreq.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		hreq.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(out)))
	}
	_, err = env.stdout.Write(append(bytes.TrimSpace(out), '\n'))
	return err
}
