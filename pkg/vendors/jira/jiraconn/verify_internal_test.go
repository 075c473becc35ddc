package jiraconn

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/store"
)

const testSecret = "test-client-secret"

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func bearer(t *testing.T, key string, claims jwt.MapClaims) http.Header {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return http.Header{"Authorization": {"Bearer " + s}}
}

func newTestVerifier(t *testing.T, c *clock, entries int) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{ClientSecret: []byte(testSecret), Now: c.Now, TokenCache: entries})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantRefused(t *testing.T, v *Verifier, h http.Header, msg string) {
	t.Helper()
	_, err := v.Authenticate(h)
	if !errors.Is(err, connector.ErrUnauthenticated) || err.Error() != msg {
		t.Fatalf("Authenticate = %v, want %q", err, msg)
	}
}

// A remembered token is good until its exp and no longer; past it the
// token is checked again, and refused once the leeway is over.
func TestRememberedTokenExpires(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	v := newTestVerifier(t, c, 0)
	h := bearer(t, testSecret, jwt.MapClaims{"exp": c.now.Add(10 * time.Minute).Unix(), "context": map[string]any{"cloudId": "cloud-a"}})
	for range 2 {
		d, err := v.Authenticate(h)
		if err != nil {
			t.Fatal(err)
		}
		// What the checks read of the token comes back from the cache too.
		if err := d.CheckConnection(&store.Connection{ID: "c", CloudID: "cloud-b"}); !errors.Is(err, connector.ErrWrongSite) {
			t.Fatalf("a token for cloud-a was let into cloud-b's connection: %v", err)
		}
	}
	if v.verified.Len() != 1 {
		t.Fatalf("%d tokens remembered, want 1", v.verified.Len())
	}
	c.now = c.now.Add(10*time.Minute + 30*time.Second) // past exp, within the leeway
	if _, err := v.Authenticate(h); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	if v.verified.Len() != 0 {
		t.Fatal("a token past its exp is remembered")
	}
	c.now = c.now.Add(time.Minute)
	wantRefused(t, v, h, "token expired")
}

// Only successes are remembered: a forged token stays refused, however
// often it comes and whatever was accepted before it.
func TestRefusedTokensAreNotRemembered(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	v := newTestVerifier(t, c, 0)
	exp := c.now.Add(10 * time.Minute).Unix()
	if _, err := v.Authenticate(bearer(t, testSecret, jwt.MapClaims{"exp": exp})); err != nil {
		t.Fatal(err)
	}
	forged := bearer(t, "another-secret", jwt.MapClaims{"exp": exp})
	for range 3 {
		wantRefused(t, v, forged, "bad token signature")
	}
	early := bearer(t, testSecret, jwt.MapClaims{"exp": exp, "nbf": c.now.Add(5 * time.Minute).Unix()})
	wantRefused(t, v, early, "token not valid yet (nbf)")
	tooLong := bearer(t, testSecret, jwt.MapClaims{"exp": c.now.Add(3 * time.Hour).Unix()})
	wantRefused(t, v, tooLong, "token expires more than 1h0m0s ahead")
	if v.verified.Len() != 1 {
		t.Fatalf("%d tokens remembered, want only the valid one", v.verified.Len())
	}
	// Once valid, the early token is accepted.
	c.now = c.now.Add(5 * time.Minute)
	if _, err := v.Authenticate(early); err != nil {
		t.Fatal(err)
	}
}

func TestTokenCacheIsBounded(t *testing.T) {
	c := &clock{now: time.Unix(1_700_000_000, 0)}
	v := newTestVerifier(t, c, 3)
	for i := range 10 {
		h := bearer(t, testSecret, jwt.MapClaims{"exp": c.now.Add(10 * time.Minute).Unix(), "jti": fmt.Sprint(i)})
		if _, err := v.Authenticate(h); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.verified.Len(); n != 3 {
		t.Fatalf("%d tokens remembered, want the bound, 3", n)
	}
}
