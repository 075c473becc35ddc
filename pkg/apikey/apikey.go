// Package apikey issues, checks and revokes organizations' API keys. Only a
// key's SHA-256 is stored: a stolen database does not yield usable keys, and
// the key is high-entropy so a plain hash is enough (no password hashing).
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/itsmhub/itsm/pkg/store"
)

// prefix marks the platform's keys, so secret scanners can recognize them.
const prefix = "itsm_"

// ErrUnknown: the key is not valid (never existed, or revoked).
var ErrUnknown = errors.New("unknown API key")

// Store is what keys need from the store.
type Store interface {
	CreateAPIKey(ctx context.Context, k *store.APIKey) error
	LookupAPIKey(ctx context.Context, hash []byte) (*store.APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]*store.APIKey, error)
	RevokeAPIKey(ctx context.Context, orgID, id string, at time.Time) error
}

// Hash is what is stored of a key.
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// Create issues a key for the organization and returns its plaintext: the
// only time it exists.
func Create(ctx context.Context, st Store, orgID, name string, now time.Time) (*store.APIKey, string, error) {
	if strings.TrimSpace(orgID) == "" {
		return nil, "", errors.New("an organization id is required")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("generate key: %w", err)
	}
	plain := prefix + base64.RawURLEncoding.EncodeToString(raw)
	k := &store.APIKey{ID: uuid.NewString(), OrganizationID: orgID, Name: name, Hash: Hash(plain), CreatedAt: now.UTC()}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return nil, "", fmt.Errorf("store api key: %w", err)
	}
	return k, plain, nil
}

// Authenticator resolves keys to organizations: keys from the store, and in
// dev mode also static ones from the environment.
type Authenticator struct {
	store  Store
	static map[[32]byte]string
}

// NewAuthenticator builds one; static maps plaintext key → organization.
func NewAuthenticator(st Store, static map[string]string) *Authenticator {
	a := &Authenticator{store: st, static: map[[32]byte]string{}}
	for k, org := range static {
		a.static[sha256.Sum256([]byte(k))] = org
	}
	return a
}

// Authenticate returns the key's organization, or ErrUnknown.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (string, error) {
	h := sha256.Sum256([]byte(key))
	if org, ok := a.static[h]; ok {
		return org, nil
	}
	k, err := a.store.LookupAPIKey(ctx, h[:])
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrUnknown
	}
	if err != nil {
		return "", fmt.Errorf("authenticate: %w", err)
	}
	return k.OrganizationID, nil
}
