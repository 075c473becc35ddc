// Command jirasim serves the Jira Cloud simulator (pkg/vendors/jira/jirasim) over HTTP for
// demos and manual testing: OAuth 2.0 (3LO), REST API v3 under
// /ex/jira/{cloudid}/rest/api/3/, dynamic webhook deliveries, and the
// /_sim/ control endpoints.
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
	"syscall"
	"time"

	"github.com/itsmhub/itsm/pkg/vendors/jira/jirasim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "jirasim:", err)
		os.Exit(1)
	}
}

// run parses flags, serves until ctx ends, then shuts down gracefully.
// ready, if set, receives the listening address (tests use -addr :0).
func run(ctx context.Context, args []string, out io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("jirasim", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		o          jirasim.Options
		addr       = fs.String("addr", "127.0.0.1:9090", "listen address")
		sites      = fs.Int("sites", 1, "number of simulated sites (cloud ids)")
		verbose    = fs.Bool("v", false, "log every delivery")
		rate       = fs.Float64("rate-per-second", 0, "REST rate limit (token bucket refill per second); 0 = off")
		rateBurst  = fs.Int("rate-burst", 0, "REST rate limit bucket size (default ceil(rate))")
		everyNth   = fs.Int("rate-every-nth", 0, "answer every Nth REST call with 429; 0 = off")
		dupProb    = fs.Float64("dup-prob", 0, "fault: probability a delivery is sent twice")
		dropProb   = fs.Float64("drop-prob", 0, "fault: probability a delivery is never sent")
		reorder    = fs.Int("reorder-batch", 0, "fault: hold and shuffle deliveries in batches of N")
		maxDelay   = fs.Duration("max-delay", 0, "fault: random extra delay before a delivery")
		shutdownTO = fs.Duration("shutdown-timeout", 5*time.Second, "graceful shutdown timeout")
	)
	fs.Int64Var(&o.Seed, "seed", 1, "data seed (same seed and sizes = same data)")
	fs.IntVar(&o.Projects, "projects", 3, "projects per site")
	fs.IntVar(&o.IssuesPerProject, "issues", 30, "seeded issues per project")
	fs.IntVar(&o.CommentsPerIssue, "comments", 2, "seeded comments per issue (-1 = none)")
	fs.IntVar(&o.Users, "users", 20, "users per site")
	fs.IntVar(&o.Groups, "groups", 5, "groups per site")
	fs.StringVar(&o.ClientID, "client-id", "jirasim-client", "OAuth client id")
	fs.StringVar(&o.ClientSecret, "client-secret", "jirasim-secret", "OAuth client secret (also signs webhook JWTs)")
	fs.StringVar(&o.GatewayURL, "gateway-url", "https://api.atlassian.com", "prefix of REST v3 self links")
	fs.DurationVar(&o.AccessTokenTTL, "token-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&o.RefreshGrace, "refresh-grace", 10*time.Minute, "how long a rotated refresh token keeps working")
	fs.DurationVar(&o.WebhookTTL, "webhook-ttl", 30*24*time.Hour, "dynamic webhook lifetime")
	fs.DurationVar(&o.RetryBackoff, "retry-backoff", time.Second, "first delivery retry delay (doubles)")
	fs.IntVar(&o.MaxRetries, "max-retries", 5, "delivery retries (-1 = none)")
	fs.DurationVar(&o.DeliveryTimeout, "delivery-timeout", 10*time.Second, "per-attempt delivery timeout")
	fs.BoolVar(&o.DenyConsent, "deny-consent", false, "answer /authorize with error=access_denied")
	fs.BoolVar(&o.ConsentScreen, "consent-screen", false, "show a consent page (choose the site, Accept or Deny) instead of consenting at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *sites < 1 {
		return errors.New("-sites must be at least 1")
	}
	o.Sites = make([]jirasim.Site, *sites)
	if *rate > 0 || *everyNth > 0 {
		o.RateLimit = &jirasim.RateLimit{PerSecond: *rate, Burst: *rateBurst, EveryNth: *everyNth}
	}
	o.Faults = jirasim.Faults{DuplicateProb: *dupProb, DropProb: *dropProb, ReorderBatch: *reorder, MaxDelay: jirasim.Duration(*maxDelay)}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	o.Logger = log

	sim, err := jirasim.New(o)
	if err != nil {
		return err
	}
	defer sim.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "jirasim listening on %s (seed %d)\n  authorize: %s/authorize\n  token:     %s/oauth/token\n  resources: %s/oauth/token/accessible-resources\n  client:    %s / %s\n",
		base, o.Seed, base, base, base, sim.ClientID(), sim.ClientSecret())
	for _, s := range sim.Sites() {
		fmt.Fprintf(out, "  site %s (%s): REST %s/ex/jira/%s/rest/api/3/\n", s.Name, s.URL, base, s.ID)
	}
	fmt.Fprintf(out, "  control:   %s/_sim/info, POST /_sim/issues, /_sim/clock/advance, /_sim/faults ...\n", base)
	if ready != nil {
		ready(ln.Addr().String())
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTO)
	defer cancel()
	_ = sim.Close() // stop deliveries first so no new outbound work starts
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(out, "jirasim stopped")
	return nil
}
