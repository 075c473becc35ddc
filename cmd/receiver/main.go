// Command receiver runs the receiver service alone, against shared NATS and store.
package main

import (
	"os"

	"github.com/itsmhub/itsm/pkg/platform"
)

func main() {
	os.Exit(platform.Main(platform.Components{Receiver: true}, os.Stderr))
}
