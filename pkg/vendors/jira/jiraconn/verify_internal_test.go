package jiraconn

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	json "github.com/go-json-experiment/json/v1"
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

// inspectByUnmarshal is inspect's reference: the envelope as json.Unmarshal
// decodes it.
func inspectByUnmarshal(body []byte) (*envelope, error) {
	if !json.Valid(body) {
		return nil, errNotJSON
	}
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		return &envelope{}, nil
	}
	return &env, nil
}

// inspect slices the plain shape and defers the rest to json.Unmarshal:
// either way it must read what json.Unmarshal reads.
func FuzzInspectReadsWhatUnmarshalReads(f *testing.F) {
	for _, body := range []string{
		`{"webhookEvent":"jira:issue_updated","issue":{"id":"1","self":"https://acme.atlassian.net/rest/api/2/issue/1","fields":{"summary":"a \"b\" {c}","self":"x"}},"matchedWebhookIds":[1,22]}`,
		`{"comment":{"self":"https://acme.atlassian.net/rest/api/2/issue/1/comment/2","body":"x"},"issue":{"self":"https://b.atlassian.net/i/1"}}`,
		`{"issue":null,"comment":{"self":null},"matchedWebhookIds":null}`,
		`{"matchedWebhookIds":[]}`,
		`{"Issue":{"self":"https://evil.example/1"}}`,         // json.Unmarshal ignores case
		`{"issue":{"SELF":"https://evil.example/1"}}`,         // in nested names too
		`{"issue":{"self":"a"},"issue":{"id":"2"}}`,           // repeated: merged
		`{"issue":{"self":"a","self":"b"}}`,                   // last wins
		`{"\u0069ssue":{"self":"https://evil.example/1"}}`,    // escaped name
		`{"issue":{"self":"https:\/\/acme.atlassian.net/x"}}`, // escaped value
		`{"issue":{"self":5}}`,                                // another type: nothing read
		`{"issue":[],"comment":{"self":"a"}}`,                 // likewise
		`{"matchedWebhookIds":[1.5]}`,                         // not integers
		`{"matchedWebhookIds":[9223372036854775808]}`,         // out of range
		`{"matchedWebhookIds":[-3, 1e2]}`,
		`[{"issue":{"self":"a"}}]`,
		`"issue"`,
		`{"issue":{"self":"a"}`,
		`{"issue":{"self":"a"}} x`,
		` { "issue" : { "self" : "a" } , "matchedWebhookIds" : [ 1 , 2 ] } `,
		`{"ſelf":"x","issue":{"ſelf":"https://evil.example/1"}}`, // folds to "self"
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := inspect(body)
		want, wantErr := inspectByUnmarshal(body)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%s: inspect error %v, json.Unmarshal's %v", body, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if got.Issue != want.Issue || got.Comment != want.Comment || !slices.Equal(got.MatchedWebhookIDs, want.MatchedWebhookIDs) {
			t.Fatalf("%s: inspect read %+v, json.Unmarshal %+v", body, *got, *want)
		}
	})
}

// Jira's plain deliveries take the sliced path, not json.Unmarshal.
func TestPlainDeliveriesAreSliced(t *testing.T) {
	env, ok := readEnvelope([]byte(`{"timestamp":1,"issue":{"id":"1","self":"https://acme.atlassian.net/rest/api/2/issue/1","fields":{"description":"x"}},"matchedWebhookIds":[7]}`))
	if !ok || env.Issue.Self != "https://acme.atlassian.net/rest/api/2/issue/1" || !slices.Equal(env.MatchedWebhookIDs, []int64{7}) {
		t.Fatalf("readEnvelope = %+v, %v", env, ok)
	}
}
