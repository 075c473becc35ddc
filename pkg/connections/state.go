package connections

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Signed tokens of the consent flow. Each is its fields, base64url-encoded
// and joined by dots, then an HMAC-SHA256 over a purpose label and those
// fields, so that a token minted for one step (the OAuth state) can never
// pass for another (the confirmation form). The last field is the expiry in
// Unix seconds. Single use comes from a random nonce whose hash is stored on
// the connection and cleared when the token is spent.
const (
	purposeState   = "itsm-oauth-state-v2"
	purposeConsent = "itsm-consent-form-v1"
)

var (
	errTokenForged  = errors.New("token is malformed or its signature is wrong")
	errTokenExpired = errors.New("token has expired")
)

func signToken(key []byte, purpose string, exp time.Time, fields ...string) string {
	parts := make([]string, 0, len(fields)+1)
	for _, f := range fields {
		parts = append(parts, base64.RawURLEncoding.EncodeToString([]byte(f)))
	}
	parts = append(parts, strconv.FormatInt(exp.Unix(), 10))
	payload := strings.Join(parts, ".")
	return payload + "." + mac(key, purpose, payload)
}

// verifyToken checks the signature first, then the expiry, and returns the
// n fields the purpose carries.
func verifyToken(key []byte, purpose, token string, n int, now time.Time) ([]string, error) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return nil, errTokenForged
	}
	payload, sig := token[:i], token[i+1:]
	if !hmac.Equal([]byte(sig), []byte(mac(key, purpose, payload))) {
		return nil, errTokenForged
	}
	parts := strings.Split(payload, ".")
	if len(parts) != n+1 {
		return nil, errTokenForged
	}
	exp, err := strconv.ParseInt(parts[n], 10, 64)
	if err != nil {
		return nil, errTokenForged
	}
	fields := make([]string, n)
	for j := range n {
		b, err := base64.RawURLEncoding.DecodeString(parts[j])
		if err != nil {
			return nil, errTokenForged
		}
		fields[j] = string(b)
	}
	if now.Unix() > exp {
		return fields, errTokenExpired
	}
	return fields, nil
}

func mac(key []byte, purpose, payload string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func newNonce(size int) string {
	b := make([]byte, size)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashNonce(n string) string {
	sum := sha256.Sum256([]byte(n))
	return hex.EncodeToString(sum[:])
}

// signState mints an OAuth state bound to the organization and the
// connection; the returned hash is stored on the connection.
func signState(key []byte, orgID, connID string, exp time.Time) (state, nonceHash string) {
	n := newNonce(16)
	return signToken(key, purposeState, exp, orgID, connID, n), hashNonce(n)
}

// verifyState returns the organization, the connection and the nonce hash
// to compare with the stored one; ErrBadState or ErrStateExpired otherwise.
func verifyState(key []byte, state string, now time.Time) (orgID, connID, nonceHash string, err error) {
	f, err := verifyToken(key, purposeState, state, 3, now)
	switch {
	case errors.Is(err, errTokenExpired):
		return "", "", "", ErrStateExpired
	case err != nil, f[0] == "", f[1] == "":
		// An empty organization would make the lookup unscoped.
		return "", "", "", ErrBadState
	}
	return f[0], f[1], hashNonce(f[2]), nil
}
