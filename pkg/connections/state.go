package connections

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// An OAuth state is connection.nonce.expiry, signed with HMAC-SHA256. The
// signature binds it to the connection and makes it unforgeable; the nonce's
// hash, stored on the connection and cleared on use, makes it single-use.

func signState(key []byte, connID string, exp time.Time) (state, nonceHash string) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	n := base64.RawURLEncoding.EncodeToString(nonce)
	payload := connID + "." + n + "." + strconv.FormatInt(exp.Unix(), 10)
	return payload + "." + mac(key, payload), hashNonce(n)
}

func mac(key []byte, payload string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func hashNonce(n string) string {
	sum := sha256.Sum256([]byte(n))
	return hex.EncodeToString(sum[:])
}

// verifyState checks signature and expiry and returns the connection id and
// the nonce hash to compare with the stored one.
func verifyState(key []byte, state string, now time.Time) (connID, nonceHash string, ok bool) {
	i := strings.LastIndexByte(state, '.')
	if i < 0 {
		return "", "", false
	}
	payload, sig := state[:i], state[i+1:]
	if !hmac.Equal([]byte(sig), []byte(mac(key, payload))) {
		return "", "", false
	}
	parts := strings.Split(payload, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || now.Unix() > exp {
		return "", "", false
	}
	return parts[0], hashNonce(parts[1]), true
}
