// Command receiver runs the receiver service alone, against shared NATS and store.
//
//	receiver               run until SIGTERM
//	receiver healthcheck   probe /healthz (for container runtimes)
package main

import (
	"os"

	"github.com/itsmhub/itsm/internal/app"
)

func main() {
	os.Exit(app.ServiceMain(app.Components{Receiver: true}, os.Args[1:], os.Stderr))
}
