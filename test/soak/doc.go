// Package soak holds the platform's soak test (build tag "soak", run by
// `make soak`): ten minutes at a steady rate with the heap and goroutines
// sampled, failing on a growth trend.
package soak
