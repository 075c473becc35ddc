// Command snsim serves the ServiceNow simulator
// (pkg/vendors/servicenow/snsim) over HTTP for demos and manual testing:
// the Table and Attachment APIs, basic auth and OAuth 2.0, rate limits,
// signed pushes, and the /_sim/ control endpoints. Each instance listens on
// its own port: -addr for the first, the following ports for the others.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/itsmhub/itsm/pkg/vendors/servicenow/snsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "snsim:", err)
		os.Exit(1)
	}
}

// run parses flags, serves until ctx ends, then shuts down gracefully.
// ready, if set, receives the instances' listening addresses.
func run(ctx context.Context, args []string, out io.Writer, ready func(addrs []string)) error {
	fs := flag.NewFlagSet("snsim", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		o          snsim.Options
		z          snsim.Sizes
		addr       = fs.String("addr", "127.0.0.1:9091", "listen address of the first instance; the next instances take the following ports (port 0: any free port)")
		instances  = fs.Int("instances", 1, "number of simulated instances (dev10001, dev10002, ...)")
		verbose    = fs.Bool("v", false, "log every push")
		ratePerH   = fs.Int("rate-per-hour", 0, "rate-limit rule for everyone: requests per user per hour; 0 = off")
		rateWindow = fs.Duration("rate-window", time.Hour, "rate-limit counting window (real instances: 1h)")
		localLinks = fs.Bool("links-from-request", false, "render reference and download links against the called host instead of https://<name>.service-now.com")
		errNth     = fs.Int("error-every-nth", 0, "answer every Nth REST call with -error-status; 0 = off")
		errStatus  = fs.Int("error-status", 503, "status of injected REST errors (500: JSON body; 502/503/504: HTML page)")
		latency    = fs.Duration("latency", 0, "extra latency of every REST call")
		dupProb    = fs.Float64("dup-prob", 0, "push fault: probability a push is sent twice")
		dropProb   = fs.Float64("drop-prob", 0, "push fault: probability a push is never sent")
		reorder    = fs.Int("reorder-batch", 0, "push fault: hold and shuffle pushes in batches of N")
		maxDelay   = fs.Duration("max-delay", 0, "push fault: random extra delay before a push")
		pushURL    = fs.String("push-url", "", "subscribe this URL to pushes at start (with -push-secret)")
		pushSecret = fs.String("push-secret", "", "HMAC-SHA256 key of the -push-url subscription")
		pushTables = fs.String("push-tables", "incident,problem,change_request,sc_req_item,sc_task", "tables of the -push-url subscription")
		pushRecord = fs.Bool("push-record", false, "include the record in pushes of the -push-url subscription")
		shutdownTO = fs.Duration("shutdown-timeout", 5*time.Second, "graceful shutdown timeout")
	)
	fs.Int64Var(&o.Seed, "seed", 1, "data seed (same seed and sizes = same data)")
	fs.IntVar(&z.Incidents, "incidents", 60, "generated incidents per instance")
	fs.IntVar(&z.Problems, "problems", 12, "generated problems per instance")
	fs.IntVar(&z.Changes, "changes", 12, "generated change requests per instance")
	fs.IntVar(&z.RequestItems, "request-items", 10, "generated sc_req_item records per instance")
	fs.IntVar(&z.CatalogTasks, "catalog-tasks", 15, "generated sc_task records per instance")
	fs.IntVar(&z.Users, "users", 30, "generated users besides the accounts")
	fs.IntVar(&z.Groups, "groups", 6, "assignment groups (the first is restricted)")
	fs.IntVar(&z.JournalPerTask, "journal", 2, "journal entries per task (-1 = none)")
	fs.IntVar(&z.AttachmentEvery, "attachment-every", 3, "every Nth task has an attachment (-1 = none)")
	fs.DurationVar(&o.AccessTokenTTL, "token-ttl", 30*time.Minute, "OAuth access token lifetime")
	fs.DurationVar(&o.RefreshTokenTTL, "refresh-ttl", 100*24*time.Hour, "OAuth refresh token lifetime")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // -h: the usage is printed
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *instances < 1 {
		return errors.New("-instances must be at least 1")
	}
	if (*pushURL == "") != (*pushSecret == "") {
		return errors.New("-push-url and -push-secret go together")
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("-addr: port %q is not a number", portStr)
	}
	for i := 0; i < *instances; i++ {
		in := snsim.Instance{Sizes: z, RateWindow: *rateWindow, LinksFromRequest: *localLinks}
		if *ratePerH > 0 {
			in.RateRules = []snsim.RateRule{{Limit: *ratePerH}}
		}
		o.Instances = append(o.Instances, in)
	}
	o.APIFaults = snsim.APIFaults{ErrorEveryNth: *errNth, ErrorStatus: *errStatus, Latency: snsim.Duration(*latency)}
	o.Faults = snsim.Faults{DuplicateProb: *dupProb, DropProb: *dropProb, ReorderBatch: *reorder, MaxDelay: snsim.Duration(*maxDelay)}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	o.Logger = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))

	sim, err := snsim.New(o)
	if err != nil {
		return err
	}
	defer sim.Close()
	if *pushURL != "" {
		for _, in := range sim.Instances() {
			if _, err := in.Subscribe(snsim.Subscription{Tables: strings.Split(*pushTables, ","), URL: *pushURL,
				Secret: *pushSecret, IncludeRecord: *pushRecord}); err != nil {
				return err
			}
		}
	}
	var (
		srvs  []*http.Server
		addrs []string
	)
	errc := make(chan error, len(sim.Instances()))
	for i, in := range sim.Instances() {
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, s := range srvs {
				_ = s.Close()
			}
			return err
		}
		srv := &http.Server{Handler: in.Handler(), ReadHeaderTimeout: 10 * time.Second}
		srvs = append(srvs, srv)
		addrs = append(addrs, ln.Addr().String())
		go func() { errc <- srv.Serve(ln) }()
		base := "http://" + ln.Addr().String()
		fmt.Fprintf(out, "snsim instance %s (%s) on %s (seed %d)\n  Table API:  %s/api/now/table/incident\n  OAuth:      %s/oauth_auth.do, %s/oauth_token.do\n  control:    %s/_sim/info\n",
			in.Name(), in.URL(), base, o.Seed, base, base, base, base)
	}
	fmt.Fprintln(out, "  accounts (simulator defaults): admin/admin-password (admin), itsm.integration/integration-password (itil), no.roles/no-roles-password")
	fmt.Fprintln(out, "  OAuth client: snsim-client / snsim-secret")
	if ready != nil {
		ready(addrs)
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTO)
	defer cancel()
	_ = sim.Close() // stop pushes first so no new outbound work starts
	for _, s := range srvs {
		if err := s.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	fmt.Fprintln(out, "snsim stopped")
	return nil
}
