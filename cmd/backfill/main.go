// Command backfill runs the backfill service alone, against shared NATS and store.
//
//	backfill               run until SIGTERM
//	backfill healthcheck   probe /healthz (for container runtimes)
package main

import (
	"os"

	"github.com/itsmhub/itsm/internal/app"
)

func main() {
	os.Exit(app.ServiceMain(app.Components{Backfill: true}, os.Args[1:], os.Stderr))
}
