package jiraconn

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	json "github.com/go-json-experiment/json/v1"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/itsmhub/itsm/pkg/connector"
	"github.com/itsmhub/itsm/pkg/jsonscan"
	"github.com/itsmhub/itsm/pkg/store"
)

// Headers Jira sets on deliveries (JIRA.md §3).
const (
	HeaderWebhookID    = "X-Atlassian-Webhook-Identifier"
	HeaderWebhookRetry = "X-Atlassian-Webhook-Retry"
)

// jwtLeeway absorbs clock skew between Jira and us.
const jwtLeeway = time.Minute

// VerifierConfig says how deliveries of the dynamic webhooks are checked.
type VerifierConfig struct {
	// ClientSecret of the OAuth app: Jira signs the deliveries' JWT with it.
	ClientSecret []byte
	// MaxTokenLifetime bounds how far ahead a token's exp may lie (default
	// one hour).
	MaxTokenLifetime time.Duration
	// Now is the clock tokens are checked against (time.Now when nil);
	// tests share the simulator's.
	Now func() time.Time
	// SiteOptional accepts a token that names no site (context.cloudId)
	// and leaves the site to the body's self URLs; a token naming another
	// site is refused either way.
	SiteOptional bool
	// TokenCache bounds how many verified tokens are remembered (default
	// DefaultTokenCache). Jira may send many deliveries under one token;
	// checking its signature and claims once spares that work on the rest.
	TokenCache int
}

// DefaultTokenCache is VerifierConfig.TokenCache's default: a few hundred
// bytes per entry.
const DefaultTokenCache = 1024

// Verifier is Jira's receiver.DeliveryVerifier.
type Verifier struct {
	cfg VerifierConfig
	jwt *jwt.Parser
	// verified maps the SHA-256 of a token that passed every check to what
	// the checks read of it, until its exp. Only a success is remembered:
	// a refused token is checked again each time. Keys are hashes so that
	// the cache holds no credential.
	verified *lru.Cache[[sha256.Size]byte, verifiedToken]
}

// verifiedToken is what a delivery needs of a token that passed: once its
// signature, nbf and lifetime hold they keep holding, until exp.
type verifiedToken struct {
	exp     time.Time
	cloudID string
}

// NewVerifier builds the verifier of Jira's deliveries.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.ClientSecret) == 0 {
		return nil, errors.New("jira: a client secret is required to verify webhooks")
	}
	if cfg.MaxTokenLifetime <= 0 {
		cfg.MaxTokenLifetime = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenCache <= 0 {
		cfg.TokenCache = DefaultTokenCache
	}
	verified, err := lru.New[[sha256.Size]byte, verifiedToken](cfg.TokenCache)
	if err != nil {
		return nil, fmt.Errorf("jira: token cache: %w", err)
	}
	return &Verifier{cfg: cfg, verified: verified, jwt: jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}), jwt.WithLeeway(jwtLeeway),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(cfg.Now))}, nil
}

// Headers are Jira's delivery identifier, which it keeps across retries,
// and its retry count.
func (v *Verifier) Headers() (deliveryID, retry string) { return HeaderWebhookID, HeaderWebhookRetry }

// Authenticate checks a dynamic-webhook delivery's Bearer JWT: the HMAC
// signature with the algorithm pinned to HMAC (a token cannot pick "none"
// or an asymmetric key), an exp that is present and near (a leaked token is
// good for minutes, not forever) and nbf when present.
func (v *Verifier) Authenticate(h http.Header) (connector.Delivery, error) {
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, unauthenticated("missing Bearer token")
	}
	d := &delivery{siteOptional: v.cfg.SiteOptional}
	key := sha256.Sum256([]byte(token))
	if t, ok := v.verified.Get(key); ok {
		// The leeway is not extended to a remembered token: past its exp
		// it is checked again, and refused once the leeway is over too.
		if v.cfg.Now().Before(t.exp) {
			d.claims.Context.CloudID = t.cloudID
			return d, nil
		}
		v.verified.Remove(key)
	}
	_, err := v.jwt.ParseWithClaims(token, &d.claims, func(*jwt.Token) (any, error) { return v.cfg.ClientSecret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, unauthenticated("token has no exp")
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, unauthenticated("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, unauthenticated("token not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, unauthenticated("bad token signature")
	default:
		return nil, unauthenticated("invalid token")
	}
	if d.claims.ExpiresAt.Sub(v.cfg.Now()) > v.cfg.MaxTokenLifetime+jwtLeeway {
		return nil, unauthenticated(fmt.Sprintf("token expires more than %v ahead", v.cfg.MaxTokenLifetime))
	}
	if exp := d.claims.ExpiresAt.Time; v.cfg.Now().Before(exp) {
		v.verified.Add(key, verifiedToken{exp: exp, cloudID: d.claims.Context.CloudID})
	}
	return d, nil
}

func unauthenticated(msg string) error { return connector.Refuse(connector.ErrUnauthenticated, msg) }

func wrongSite(msg string) error { return connector.Refuse(connector.ErrWrongSite, msg) }

// deliveryClaims are the claims the verifier reads. Jira's are undocumented
// (JIRA.md §3); the Jira simulator, like Atlassian's context JWTs, names the
// site in context.cloudId.
type deliveryClaims struct {
	jwt.RegisteredClaims
	Context struct {
		CloudID string `json:"cloudId"`
	} `json:"context"`
}

// delivery is an authenticated delivery on its way through the checks.
type delivery struct {
	claims       deliveryClaims
	siteOptional bool
	// tokenSite: the token proved the connection's site.
	tokenSite bool
}

// CheckConnection tells whether the token proves the delivery's site: it
// must name the connection's, so that a token one site sent cannot carry a
// delivery into another site's connection. A connection whose cloud id is
// not known, or with SiteOptional a token naming no site, leaves the check
// to the body's self URLs.
func (d *delivery) CheckConnection(conn *store.Connection) error {
	cloud := d.claims.Context.CloudID
	switch {
	case conn.CloudID == "":
	case cloud == "" && d.siteOptional:
	case cloud == "":
		return wrongSite("token names no site (context.cloudId)")
	case cloud != conn.CloudID:
		return wrongSite(fmt.Sprintf("token is for another site than connection %s", conn.ID))
	default:
		d.tokenSite = true
	}
	return nil
}

// CheckBody validates the body as JSON and refuses records that point at
// another site than the connection's: a signed delivery for tenant A must
// not land in tenant B's connection because someone swapped the URL path.
// Unless the token already proved the site, a self URL must prove it: a
// body without one proves nothing.
func (d *delivery) CheckBody(conn *store.Connection, body []byte) ([]int64, error) {
	env, err := inspect(body)
	if err != nil {
		return nil, connector.Refuse(connector.ErrInvalidBody, "body is not valid JSON")
	}
	proved := d.tokenSite
	for _, self := range []string{env.Issue.Self, env.Comment.Self} {
		if self == "" {
			continue
		}
		if !SameSite(conn, self) {
			return nil, wrongSite(fmt.Sprintf("delivery is for another site than connection %s", conn.ID))
		}
		proved = true
	}
	if !proved {
		return nil, wrongSite("delivery names no site: want issue.self or comment.self")
	}
	return env.MatchedWebhookIDs, nil
}

// envelope is what the verifier reads of a delivery.
type envelope struct {
	Issue             struct{ Self string } `json:"issue"`
	Comment           struct{ Self string } `json:"comment"`
	MatchedWebhookIDs []int64               `json:"matchedWebhookIds"`
}

// errNotJSON: the body is not JSON at all.
var errNotJSON = errors.New("not valid JSON")

// inspect validates the body and reads its envelope. The plain shape Jira
// sends is read in one validating pass of a decoder that skips what the
// envelope does not hold (readEnvelope), at about the cost of json.Valid
// and half that of decoding into a struct; anything else is decoded as
// json.Unmarshal would.
func inspect(body []byte) (*envelope, error) {
	if env, ok := readEnvelope(body); ok {
		return env, nil
	}
	if !json.Valid(body) {
		return nil, errNotJSON
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		// Valid JSON of another shape: the normalizer reports it.
		return &envelope{}, nil
	}
	return &env, nil
}

var (
	envelopeNames = []string{"issue", "comment", "matchedWebhookIds"}
	selfNames     = []string{"self"}
)

// readEnvelope reads the envelope of a body as json.Unmarshal would, and
// validates all of it; false for what it leaves to json.Valid and
// json.Unmarshal: invalid JSON, names escaped, repeated or matching only
// when case is ignored (json.Unmarshal matches them), and values of other
// types than the envelope's.
func readEnvelope(body []byte) (*envelope, bool) {
	dec := jsonscan.NewDecoder(body)
	defer dec.Release()
	d := &dec.Decoder
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, false
	}
	var env envelope
	var seen [3]bool
	for d.PeekKind() == '"' {
		i, ok := readName(d, envelopeNames)
		if !ok || (i >= 0 && seen[i]) {
			return nil, false
		}
		switch i {
		case 0:
			env.Issue.Self, ok = readSelf(d)
		case 1:
			env.Comment.Self, ok = readSelf(d)
		case 2:
			env.MatchedWebhookIDs, ok = readInt64s(d)
		default:
			ok = d.SkipValue() == nil
		}
		if !ok {
			return nil, false
		}
		if i >= 0 {
			seen[i] = true
		}
	}
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '}' {
		return nil, false
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, false
	}
	return &env, true
}

// readName reads a member's name and tells which of names it is (-1:
// none), or false for a name readEnvelope leaves to json.Unmarshal.
func readName(d *jsontext.Decoder, names []string) (int, bool) {
	tok, err := d.ReadValue()
	if err != nil {
		return -1, false
	}
	name, ok := jsonscan.Unescaped(tok)
	if !ok {
		return -1, false
	}
	for i, n := range names {
		if string(name) == n {
			return i, true
		}
		if strings.EqualFold(string(name), n) {
			return -1, false
		}
	}
	return -1, true
}

// readNull reads a null if one is next.
func readNull(d *jsontext.Decoder) (null, ok bool) {
	if d.PeekKind() != 'n' {
		return false, true
	}
	_, err := d.ReadToken()
	return true, err == nil
}

// readSelf reads the self member of an object (or null).
func readSelf(d *jsontext.Decoder) (string, bool) {
	if null, ok := readNull(d); null || !ok {
		return "", ok
	}
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", false
	}
	var self string
	seen := false
	for d.PeekKind() == '"' {
		i, ok := readName(d, selfNames)
		if !ok || (i == 0 && seen) {
			return "", false
		}
		if i < 0 {
			if d.SkipValue() != nil {
				return "", false
			}
			continue
		}
		seen = true
		if null, ok := readNull(d); null || !ok {
			if !ok {
				return "", false
			}
			continue
		}
		v, err := d.ReadValue()
		if err != nil || v.Kind() != '"' {
			return "", false
		}
		s, ok := jsonscan.Unescaped(v)
		if !ok {
			return "", false
		}
		self = string(s)
	}
	tok, err := d.ReadToken()
	return self, err == nil && tok.Kind() == '}'
}

// readInt64s reads an array of integers (or null).
func readInt64s(d *jsontext.Decoder) ([]int64, bool) {
	if null, ok := readNull(d); null || !ok {
		return nil, ok
	}
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	var out []int64
	for d.PeekKind() == '0' {
		v, err := d.ReadValue()
		if err != nil {
			return nil, false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	tok, err := d.ReadToken()
	return out, err == nil && tok.Kind() == ']'
}

// SameSite tells whether a record's self URL belongs to the connection's
// site, either by host or, for API-gateway URLs, by cloud id.
func SameSite(conn *store.Connection, self string) bool {
	u, err := url.Parse(self)
	if err != nil {
		return false
	}
	if cloud, ok := strings.CutPrefix(u.Path, "/ex/jira/"); ok {
		cloud, _, _ = strings.Cut(cloud, "/")
		return conn.CloudID != "" && cloud == conn.CloudID
	}
	site, err := url.Parse(conn.SiteURL)
	return err == nil && strings.EqualFold(site.Host, u.Host)
}
