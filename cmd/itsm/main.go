// Command itsm is the all-in-one platform binary and the operator CLI.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/itsmhub/itsm/pkg/platform"
)

const usage = `itsm: ITSM ingestion platform

Usage:
  itsm run        run receiver, normalizer and backfill in one process
  itsm help       show this help

Configuration is read from the environment (see README.md):
  ITSM_DEV, ITSM_HTTP_ADDR, ITSM_NATS_URL, ITSM_NATS_LISTEN, ITSM_STORE,
  ITSM_DATA_DIR, ITSM_API_KEYS, ITSM_JIRA_CLIENT_ID, ITSM_JIRA_CLIENT_SECRET,
  ITSM_LOG_LEVEL, ITSM_NORMALIZER_WORKERS
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return platform.Main(platform.All, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "itsm: unknown command %q\n\n%s", args[0], usage)
	return 2
}
