package snsim

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/itsmhub/itsm/internal/cputime"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// syncKey is what a keyset sync reads of each record.
type syncKey struct {
	SysID        string `json:"sys_id"`
	SysUpdatedOn string `json:"sys_updated_on"`
	SysCreatedOn string `json:"sys_created_on"`
}

// fullSync reads a whole table as the connector's full sync does, as the
// itil integration user: keyset pages on (key, sys_id) through sysparm_query
// with ORDERBY, resuming after the last record returned; a page the ACLs
// emptied while Link names a next page is passed by following Link. It
// returns the records read.
func fullSync(tb testing.TB, client *http.Client, base, table, key, filter string, limit int, noCount bool) int {
	pageURL := func(last, lastID string) string {
		q := "ORDERBY" + key + "^ORDERBYsys_id"
		and := ""
		if filter != "" {
			and = filter + "^"
		}
		if last == "" {
			q = and + q
		} else {
			q = and + key + ">" + last + "^NQ" + and + key + "=" + last + "^sys_id>" + lastID + "^" + q
		}
		v := url.Values{"sysparm_query": {q}, "sysparm_limit": {strconv.Itoa(limit)}}
		if noCount {
			v.Set("sysparm_no_count", "true")
		}
		return base + "/api/now/v2/table/" + table + "?" + v.Encode()
	}
	n := 0
	for next := pageURL("", ""); ; {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.SetBasicAuth("itsm.integration", "integration-password")
		res, err := client.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			tb.Fatalf("status %d: %v", res.StatusCode, err)
		}
		got, r, err := scanPage(body)
		if err != nil {
			tb.Fatal(err)
		}
		n += got
		link := linkURL(res.Header.Get("Link"), "next")
		switch {
		case link == "":
			return n
		case got == 0:
			next = link
		case key == "sys_created_on":
			next = pageURL(r.SysCreatedOn, r.SysID)
		default:
			next = pageURL(r.SysUpdatedOn, r.SysID)
		}
	}
}

// scanPage counts a page's records and reads the keys of the last one,
// validating the JSON but decoding no other value, so that the benchmark
// measures the simulator rather than its client.
func scanPage(body []byte) (int, syncKey, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true))
	var last syncKey
	n := 0
	if _, err := dec.ReadToken(); err != nil { // {
		return 0, last, err
	}
	if _, err := dec.ReadToken(); err != nil { // "result"
		return 0, last, err
	}
	if _, err := dec.ReadToken(); err != nil { // [
		return 0, last, err
	}
	for dec.PeekKind() == '{' {
		if _, err := dec.ReadToken(); err != nil {
			return 0, last, err
		}
		for dec.PeekKind() != '}' {
			name, err := dec.ReadToken()
			if err != nil {
				return 0, last, err
			}
			var dst *string
			switch name.String() {
			case "sys_id":
				dst = &last.SysID
			case "sys_updated_on":
				dst = &last.SysUpdatedOn
			case "sys_created_on":
				dst = &last.SysCreatedOn
			}
			if dst == nil {
				if err := dec.SkipValue(); err != nil {
					return 0, last, err
				}
				continue
			}
			v, err := dec.ReadToken()
			if err != nil {
				return 0, last, err
			}
			*dst = v.String()
		}
		if _, err := dec.ReadToken(); err != nil {
			return 0, last, err
		}
		n++
	}
	return n, last, nil
}

// timed sums the time the simulator spends in its handler.
type timed struct {
	h  http.Handler
	ns atomic.Int64
}

func (t *timed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	t.h.ServeHTTP(w, r)
	t.ns.Add(int64(time.Since(start)))
}

// BenchmarkFullSync serves an instance of SNSIM_BENCH_INCIDENTS incidents
// (default 100,000) with 3 journal entries each to a keyset full sync of
// both tables by the integration user (ACLs hide about 1 in 12 incidents),
// SNSIM_BENCH_PAGE records per page (default 1000), with and without
// X-Total-Count. records/s is end to end on one machine (client
// included); server-records/s counts only the wall time inside the
// simulator's handler; records/cpu-s divides by the process's CPU time
// (client, simulator and GC). Run it once:
//
//	go test -run '^$' -bench FullSync -benchtime 1x ./pkg/vendors/servicenow/snsim/
func BenchmarkFullSync(b *testing.B) {
	n := envInt("SNSIM_BENCH_INCIDENTS", 100000)
	limit := envInt("SNSIM_BENCH_PAGE", 1000)
	start := time.Now()
	sim, err := New(Options{Seed: 1, Clock: NewManualClock(testStart), Instances: []Instance{{Sizes: Sizes{
		Incidents: n, Problems: -1, Changes: -1, RequestItems: -1, CatalogTasks: -1, JournalPerTask: 3, AttachmentEvery: -1}}}})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	gen := time.Since(start)
	handler := &timed{h: sim.Default().Handler()}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	base := srv.URL
	b.Logf("generated %d incidents and %d journal entries in %s; heap %d MB", n, 3*n, gen.Round(time.Millisecond), ms.HeapAlloc>>20)
	// The integration user does not see the restricted group's incidents.
	in := sim.Default()
	visible := 0
	for _, r := range in.d.tbl("incident").rows {
		if r.get(in.d.tbl("incident").sc.col("assignment_group")) != in.RestrictedGroup() {
			visible++
		}
	}
	// With X-Total-Count (the default) and with sysparm_no_count=true.
	for _, noCount := range []bool{false, true} {
		b.Run("no_count="+strconv.FormatBool(noCount), func(b *testing.B) {
			records := 0
			handler.ns.Store(0)
			cpu0 := cputime.Self()
			for b.Loop() {
				inc := fullSync(b, client, base, "incident", "sys_updated_on", "", limit, noCount)
				jn := fullSync(b, client, base, "sys_journal_field", "sys_created_on", "name=incident", limit, noCount)
				if inc != visible || jn != 3*visible {
					b.Fatalf("synced %d incidents and %d journal entries, want %d and %d", inc, jn, visible, 3*visible)
				}
				records += inc + jn
			}
			b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(records)/time.Duration(handler.ns.Load()).Seconds(), "server-records/s")
			b.ReportMetric(float64(records)/(cputime.Self()-cpu0).Seconds(), "records/cpu-s")
		})
	}
}
