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
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		url := ""
		if len(os.Args) > 2 {
			url = os.Args[2]
		}
		os.Exit(platform.Healthcheck(url, os.Stderr))
	}
	os.Exit(platform.Main(platform.Components{Normalizer: true}, os.Stderr))
}
