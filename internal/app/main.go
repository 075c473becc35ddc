package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/config"
)

// Main runs the selected components until SIGINT or SIGTERM and returns the
// process exit code. It is the whole of every service's main.
func Main(comps Components, stderr io.Writer) int {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "configuration error:\n%v\n", err)
		return 2
	}
	if err := refuseTemplateSecrets(cfg); err != nil {
		fmt.Fprintf(stderr, "configuration error:\n%v\n", err)
		return 2
	}
	log, err := NewLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer func() { _ = log.Sync() }()
	limitMemory(log, memlimit.FromCgroup)
	if cfg.Dev {
		log.Warn("dev mode: built-in client secret and API keys from the environment; never use in production")
	}
	// The process has one owner of signals: this context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := Start(ctx, cfg, comps, log)
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return 1
	}
	log.Info("started", zap.String("http", p.HTTPAddr()), zap.String("nats", p.NATSURL()), zap.Bool("dev", cfg.Dev))
	if cfg.Dev && cfg.NATSURL == "" {
		// Dev mode only: the read-only user's password is printed so that an
		// outside subscriber can connect with no set-up.
		fmt.Fprintf(stderr, "\nOutside subscribers connect as the read-only NATS user %q (passwords: %s):\n  nats sub 'itsm.>' --server %s\n\n",
			broker.UserSubscriber, filepath.Join(cfg.DataDir, DevNATSFile), p.NATSURLAs(broker.UserSubscriber))
	}
	if err := p.Wait(); err != nil {
		log.Error("stopped with error", zap.Error(err))
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

// refuseTemplateSecrets stops a production start with the placeholder values
// of .env.example: they pass validation (so the compose check can load
// them) but would run with publicly known secrets.
func refuseTemplateSecrets(cfg config.Config) error {
	if cfg.Dev {
		return nil
	}
	var errs []error
	if bytes.Equal(cfg.EncryptionKey, make([]byte, 32)) {
		errs = append(errs, errors.New("ITSM_ENCRYPTION_KEY: still the all-zero example key; generate one with: head -c 32 /dev/urandom | base64"))
	}
	for user, pw := range cfg.NATSUsers {
		if strings.HasPrefix(pw, "replace-with-") {
			errs = append(errs, fmt.Errorf("%s: still the example placeholder; generate one with: echo p$(openssl rand -hex 24)", broker.PasswordEnv(user)))
		}
	}
	for name, v := range map[string]string{"ITSM_JIRA_CLIENT_ID": cfg.JiraClientID, "ITSM_JIRA_CLIENT_SECRET": cfg.JiraClientSecret} {
		if strings.HasPrefix(v, "replace-with-") {
			errs = append(errs, fmt.Errorf("%s: still the example placeholder", name))
		}
	}
	return errors.Join(errs...)
}
