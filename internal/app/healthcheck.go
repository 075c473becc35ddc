package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/itsmhub/itsm/pkg/config"
)

// Healthcheck GETs url (or, when empty, /healthz on ITSM_HTTP_ADDR) and
// returns the exit code: 0 on 200. Container images have no shell or curl,
// so every binary carries this probe for the container runtime to run.
func Healthcheck(url string, stderr io.Writer) int {
	if url == "" {
		// The service's own configuration says where it listens.
		cfg, err := config.LoadTool(os.LookupEnv)
		if err != nil {
			fmt.Fprintf(stderr, "healthcheck: %v\n", err)
			return 1
		}
		host, port, _ := net.SplitHostPort(cfg.HTTPAddr) // validated by LoadTool
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: %s answered %d\n", url, resp.StatusCode)
		return 1
	}
	return 0
}

// ServiceMain is the whole main of a one-service binary: `healthcheck [URL]`
// probes a running one, anything else runs the service.
func ServiceMain(comps Components, args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		url := ""
		if len(args) > 1 {
			url = args[1]
		}
		return Healthcheck(url, stderr)
	}
	return Main(comps, stderr)
}
