// Command normalizer runs the normalizer service alone, against shared NATS and store.
//
//	normalizer               run until SIGTERM
//	normalizer healthcheck   probe /healthz (for container runtimes)
package main

import (
	"os"

	"github.com/itsmhub/itsm/pkg/platform"
)

func main() {
	os.Exit(platform.ServiceMain(platform.Components{Normalizer: true}, os.Args[1:], os.Stderr))
}
