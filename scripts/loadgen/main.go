// Command loadgen drives a local receiver with signed Jira webhook
// deliveries and reports requests/s, latency percentiles, the status
// histogram and errors; with -probe it also measures how long each version
// took to come out as an itsm.ticket.updated event.
//
//	go run ./scripts/loadgen -conn CONN -rate 1000 -duration 20s -probe nats://subscriber:PASSWORD@127.0.0.1:4222
//
// It refuses any host but loopback. The connection must exist and its site
// must be -site (the receiver refuses deliveries for another site).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/itsmhub/itsm/pkg/config"
	"github.com/itsmhub/itsm/scripts/loadgen/load"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg load.Config
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "receiver base URL (loopback only)")
	fs.StringVar(&cfg.Conn, "conn", "", "connection id (required)")
	fs.StringVar(&cfg.Vendor, "vendor", load.VendorJira, "jira (signed dynamic webhooks) or servicenow (signed business-rule pushes)")
	fs.StringVar(&cfg.Secret, "secret", config.DevClientSecret, "what signs the deliveries: the OAuth client secret (jira; default: the dev-mode secret) or the connection's push secret (servicenow)")
	fs.StringVar(&cfg.Site, "site", "", "the connection's Jira site or ServiceNow instance URL; records' links point at it (default https://acme.atlassian.net for jira)")
	fs.Float64Var(&cfg.Rate, "rate", 100, "deliveries per second, duplicates included (0: as fast as possible)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "concurrent keep-alive clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to run (ignored with -n)")
	fs.IntVar(&cfg.N, "n", 0, "number of fresh deliveries instead of -duration")
	fs.Float64Var(&cfg.DupProb, "dup-prob", 0, "probability that a delivery is sent twice (same identifier, like a Jira retry)")
	fs.IntVar(&cfg.ReorderWindow, "reorder-window", 0, "shuffle deliveries within windows of this many")
	fs.IntVar(&cfg.Issues, "issues", 1000, "distinct issues the versions cycle over")
	fs.IntVar(&cfg.IssueBase, "issue-base", 100000, "Jira id of the first issue")
	fs.IntVar(&cfg.BodyBytes, "body-bytes", 3<<10, "approximate size of each delivery")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of duplicates and reordering")
	fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Second, "timeout of one request")
	probeURL := fs.String("probe", "", "NATS URL (loopback): measure webhook → itsm.ticket.updated latency")
	probeWait := fs.Duration("probe-wait", 30*time.Second, "how long to wait for the last events after the load")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.N > 0 {
		cfg.Duration = 0
	}
	if err := load.CheckLoopback(cfg.URL); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var probe *load.Probe
	if *probeURL != "" {
		var err error
		if probe, err = load.StartProbe(*probeURL); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer probe.Close()
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	sum := res.Summary()
	sum.Print(stdout)
	code := 0
	if sum.OK != sum.Sent {
		code = 1
	}
	if probe != nil {
		lat := probe.Measure(res, *probeWait)
		lat.Print(stdout)
		if err := lat.Err(); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			code = 1
		}
	}
	return code
}
