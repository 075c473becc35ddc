// Command receiver runs the receiver service alone, against shared NATS and store.
//
//	receiver               run until SIGTERM
//	receiver healthcheck   probe /healthz (for container runtimes)
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
	os.Exit(platform.Main(platform.Components{Receiver: true}, os.Stderr))
}
