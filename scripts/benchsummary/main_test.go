package main

import (
	"strings"
	"testing"
)

func TestSummarizeTakesMedians(t *testing.T) {
	in := `goos: linux
BenchmarkX-2   	 100	 50 ns/op	 1.0 ratio
BenchmarkX-2   	 100	 70 ns/op	 3.0 ratio
BenchmarkX-2   	 100	 60 ns/op	 2.0 ratio
PASS`
	var out strings.Builder
	if err := summarize(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"median of 3 runs", "ns/op                    60", "ratio                     2"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if err := summarize(strings.NewReader("nothing"), &out); err == nil {
		t.Error("want an error for input without benchmarks")
	}
}
