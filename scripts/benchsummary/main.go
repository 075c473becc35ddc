// Command benchsummary reads `go test -bench` output and prints, for each
// benchmark, the median of every reported metric over its runs (-count N),
// so published figures are medians of several runs on a noisy machine.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := summarize(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchsummary:", err)
		os.Exit(1)
	}
}

func summarize(r io.Reader, w io.Writer) error {
	type series map[string][]float64
	byBench := map[string]series{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if byBench[name] == nil {
			byBench[name] = series{}
			order = append(order, name)
		}
		// After the name and iteration count come value/unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("line %q: %w", sc.Text(), err)
			}
			byBench[name][f[i+1]] = append(byBench[name][f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(order) == 0 {
		return fmt.Errorf("no benchmark lines on input")
	}
	for _, name := range order {
		s := byBench[name]
		units := make([]string, 0, len(s))
		for u := range s {
			units = append(units, u)
		}
		slices.Sort(units)
		fmt.Fprintf(w, "%s (median of %d runs)\n", name, len(s[units[0]]))
		for _, u := range units {
			vs := slices.Clone(s[u])
			slices.Sort(vs)
			fmt.Fprintf(w, "  %-14s %12.4g   (min %.4g, max %.4g)\n", u, median(vs), vs[0], vs[len(vs)-1])
		}
	}
	return nil
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
