package snclient

import "net/http"

// BasicAuth wraps a transport (nil: http.DefaultTransport) so that every
// request authenticates with the integration user's name and password.
func BasicAuth(base http.RoundTripper, user, password string) http.RoundTripper {
	return authTransport{base: base, set: func(r *http.Request) { r.SetBasicAuth(user, password) }}
}

// Bearer wraps a transport so that every request carries an OAuth access
// token.
func Bearer(base http.RoundTripper, token string) http.RoundTripper {
	return authTransport{base: base, set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }}
}

type authTransport struct {
	base http.RoundTripper
	set  func(*http.Request)
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	r = r.Clone(r.Context())
	t.set(r)
	return base.RoundTrip(r)
}
