// Package vault encrypts secrets at rest (OAuth tokens) with AES-256-GCM.
// Each ciphertext is bound to what it belongs to (associated data, e.g. the
// connection id), so a ciphertext copied onto another record does not open.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// format is the first byte of every ciphertext, so a later key rotation or
// algorithm change can tell old ciphertexts apart.
const format byte = 1

// ErrDecrypt hides why opening failed: wrong key, tampering or wrong record
// all look the same to a caller, and to an attacker.
var ErrDecrypt = errors.New("vault: cannot decrypt")

// Vault seals and opens secrets with one key.
type Vault struct {
	aead cipher.AEAD
}

// ParseKey decodes a base64 (standard or URL, padded or not) 32-byte key.
// Its errors never contain the key.
func ParseKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("want 32 bytes of key, got %d", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("not base64")
}

// NewKey makes a random key.
func NewKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on supported platforms
	}
	return k
}

// New builds a vault from a 32-byte key.
func New(key []byte) (*Vault, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("vault: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	return &Vault{aead: aead}, nil
}

// Seal encrypts plaintext bound to aad.
func (v *Vault) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, 1+v.aead.NonceSize(), 1+v.aead.NonceSize()+len(plaintext)+v.aead.Overhead())
	out[0] = format
	if _, err := rand.Read(out[1:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return v.aead.Seal(out, out[1:], plaintext, aad)
}

// Open decrypts what Seal made with the same aad.
func (v *Vault) Open(sealed, aad []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < 1+n+v.aead.Overhead() || sealed[0] != format {
		return nil, ErrDecrypt
	}
	pt, err := v.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
