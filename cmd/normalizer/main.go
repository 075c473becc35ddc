// Command normalizer runs the normalizer service alone, against shared NATS and store.
//
//	normalizer               run until SIGTERM
//	normalizer healthcheck   probe /healthz (for container runtimes)
package main

import (
	"os"

	"github.com/itsmhub/itsm/internal/app"
)

func main() {
	os.Exit(app.ServiceMain(app.Components{Normalizer: true}, os.Args[1:], os.Stderr))
}
