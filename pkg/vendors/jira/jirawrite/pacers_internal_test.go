package jirawrite

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A writer keeps the pacers of at most MaxPacers sites, the least recently
// used going first, and a kept site's calls share one pacer.
func TestPacersOfFewSitesAreKept(t *testing.T) {
	w := New(Config{MaxPacers: 2}, nil)
	a := w.pacer("site-a")
	require.Same(t, a, w.pacer("site-a"), "one pacer per site")
	b := w.pacer("site-b")
	require.Same(t, a, w.pacer("site-a"))
	w.pacer("site-c") // site-b was used least recently
	require.Equal(t, 2, w.pacers.Len())
	require.Same(t, a, w.pacer("site-a"))
	require.NotSame(t, b, w.pacer("site-b"), "site-b's pacer went, and it gets a fresh one")
	require.Equal(t, 2, w.pacers.Len())
}
