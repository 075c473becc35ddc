package receiver

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPublicEndpoints(t *testing.T) {
	for _, tc := range []struct {
		public, origin, path string
		secure               bool
	}{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "/oauth/confirm", false},
		{"https://itsm.example.com", "https://itsm.example.com", "/oauth/confirm", true},
		{"https://itsm.example.com:443/", "https://itsm.example.com", "/oauth/confirm", true},
		{"http://itsm.example.com:80", "http://itsm.example.com", "/oauth/confirm", false},
		{"https://[::1]:8443/itsm/", "https://[::1]:8443", "/itsm/oauth/confirm", true},
	} {
		origin, path, secure := publicEndpoints(tc.public)
		require.Equal(t, tc.origin, origin, tc.public)
		require.Equal(t, tc.path, path, tc.public)
		require.Equal(t, tc.secure, secure, tc.public)
	}
}
