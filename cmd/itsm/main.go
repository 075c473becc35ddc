// Command itsm is the all-in-one platform binary and the operator CLI.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `itsm: ITSM ingestion platform and operator CLI

Usage:
  itsm run                          run receiver, normalizer and backfill in one process
  itsm healthcheck [URL]            probe /healthz (for container runtimes)
  itsm apikey create --org ORG [--name NAME]
                                    issue an API key (printed once; only its hash is stored)
  itsm apikey revoke --org ORG --id ID
  itsm apikey list --org ORG
  itsm connections list --org ORG   list an organization's connections
  itsm connections show --org ORG --id ID
  itsm sync --connection ID [--kind full|incremental] [--follow]
                                    request a sync and follow its progress
  itsm stream info                  JetStream streams and the normalizer's backlog
  itsm dlq list [--connection ID]   dead-lettered messages with their errors
  itsm dlq replay (--seq N,... | --all)
                                    republish dead-lettered messages after a fix
  itsm tickets create --connection ID --project KEY --name NAME ...
                                    create a ticket at the vendor through the API
  itsm tickets update --id TICKET_ID ...
                                    change a ticket (fields, status through the workflow)
  itsm tickets comment --id TICKET_ID --body TEXT
                                    (tickets: ITSM_API_KEY, ITSM_API_URL)
  itsm help [COMMAND]               this help, or a command's

Commands read the same environment as the services (see README.md):
  ITSM_STORE, ITSM_DATA_DIR, ITSM_NATS_URL, ITSM_NATS_LISTEN, ITSM_DEV, ...
  NATS as user admin: ITSM_NATS_ADMIN_PASSWORD (after make run: ./data/dev-nats.env)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// command is one subcommand: its help and what it does.
type command struct {
	help string
	run  func(ctx context.Context, env *cliEnv, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"apikey":      {apikeyHelp, runAPIKey},
		"connections": {connectionsHelp, runConnections},
		"stream":      {streamHelp, runStream},
		"dlq":         {dlqHelp, runDLQ},
		"sync":        {syncHelp, runSync},
		"tickets":     {ticketsHelp, runTickets},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runPlatform(stderr)
	case "healthcheck":
		url := ""
		if len(args) > 1 {
			url = args[1]
		}
		return healthcheck(url, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c, ok := commands()[args[1]]; ok {
				fmt.Fprint(stdout, c.help)
				return 0
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	c, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "itsm: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
		fmt.Fprint(stdout, c.help)
		return 0
	}
	env := &cliEnv{stdout: stdout, stderr: stderr, getenv: getenv}
	defer env.close()
	if err := c.run(ctx, env, args[1:]); err != nil {
		var ue usageError
		if asUsage(err, &ue) {
			fmt.Fprintf(stderr, "itsm %s: %v\n\n%s", args[0], err, c.help)
			return 2
		}
		fmt.Fprintf(stderr, "itsm %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
