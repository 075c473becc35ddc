package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/itsmhub/itsm/pkg/broker"
	"github.com/itsmhub/itsm/pkg/connections"
	"github.com/itsmhub/itsm/pkg/lease"
	"github.com/itsmhub/itsm/pkg/vault"
)

// LeaseBucket holds the short leases that serialize token refreshes and
// webhook upkeep across replicas.
const LeaseBucket = broker.KVLeases

func (p *Platform) connectionManager(ctx context.Context, js jetstream.JetStream, log *zap.Logger, reg prometheus.Registerer) (*connections.Manager, error) {
	key, err := p.encryptionKey()
	if err != nil {
		return nil, err
	}
	v, err := vault.New(key)
	if err != nil {
		return nil, err
	}
	leases, err := lease.Open(ctx, js, LeaseBucket, owner(), broker.LeaseTTL, p.cfg.NATSReplicas)
	if err != nil {
		return nil, err
	}
	public := p.cfg.PublicURL
	if public == "" {
		public = "http://" + p.ln.Addr().String()
	}
	return connections.New(connections.Config{
		PublicURL: public, Connectors: p.connectors(),
		// A key of its own for OAuth states, derived so operators manage one secret.
		StateKey:   derive(key, "oauth-state"),
		Now:        p.now,
		Registerer: reg,
	}, p.store, v, leases, nil, log)
}

func derive(key []byte, purpose string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	return h.Sum(nil)
}

// encryptionKey is ITSM_ENCRYPTION_KEY, or in dev mode a random key kept in
// the data dir so that `make run` needs no set-up and restarts can still
// read the tokens they stored.
func (p *Platform) encryptionKey() ([]byte, error) {
	if p.cfg.EncryptionKey != nil {
		return p.cfg.EncryptionKey, nil
	}
	if !p.cfg.Dev {
		return nil, errors.New("ITSM_ENCRYPTION_KEY: required outside dev mode")
	}
	path := filepath.Join(p.cfg.DataDir, "dev-encryption.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := vault.NewKey()
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write dev encryption key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read dev encryption key: %w", err)
	}
	k, err := vault.ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("dev encryption key %s: %w", path, err)
	}
	return k, nil
}

// owner names this process in the leases it holds, for operators.
func owner() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}
