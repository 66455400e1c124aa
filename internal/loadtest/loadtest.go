// Package loadtest drives a running siyu over HTTP the way a busy day does: clients send
// events to /v1/batch as fast as the server takes them, while signed-in staff browse the
// console and call the JSON API. It measures throughput and latency per kind of request,
// counts errors, and afterwards checks in the database that every event the server
// acknowledged is stored. It is bounded in time and in requests, and meant for loopback.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Options configure a run.
type Options struct {
	// BaseURL is the server, e.g. http://127.0.0.1:43117.
	BaseURL string
	// WriteKey authenticates ingestion.
	WriteKey string
	// SessionCookie is the sign-in cookie's name; Sessions are signed-in staff, one per
	// simulated staff member (reused round robin when there are fewer than Staff).
	SessionCookie string
	Sessions      []Session
	// Staff is how many staff browse at once (none when 0).
	Staff int
	// Think is the longest pause of a staff member between two requests; each pause is
	// uniform in [0, Think) (default 500 ms; 0 means none: a stress test, not a day's work).
	Think time.Duration
	// Ingesters send batches at once (none when 0); each sends its next batch when the last is
	// answered, so together they find the rate the server sustains.
	Ingesters int
	// BatchSize is messages per /v1/batch request (default 100).
	BatchSize int
	// Users is how many distinct userIds the events spread over (default 5000).
	Users int
	// Duration bounds the run (default 60 s); MaxRequests bounds it too (default 5,000,000).
	Duration    time.Duration
	MaxRequests int64
	// RunID prefixes message ids, so a run's events are told apart (default: the start time).
	RunID string
}

// Session is a signed-in staff member: the cookie's token and the CSRF token that POSTs carry.
type Session struct{ Token, CSRF string }

func (o *Options) defaults() {
	if o.Think < 0 {
		o.Think = 0
	}
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.Users == 0 {
		o.Users = 5000
	}
	if o.Duration == 0 {
		o.Duration = 60 * time.Second
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = 5_000_000
	}
	if o.RunID == "" {
		o.RunID = time.Now().UTC().Format("20060102T150405")
	}
}

// Kinds of request, in report order. Console pages have the 200 ms p99 target.
const (
	KindBatch        = "ingest POST /v1/batch"
	KindHome         = "page GET /"
	KindCustomers    = "page GET /customers"
	KindCustomer     = "page GET /customers/{id}"
	KindAPIList      = "api GET /api/v1/customers"
	KindAPICustomer  = "api GET /api/v1/customers/{id}"
	KindAPIEvents    = "api GET /api/v1/customers/{id}/events"
	KindSegmentCount = "api POST /api/v1/segments/count"
	pageTargetMillis = 200
)

var kinds = []string{KindBatch, KindHome, KindCustomers, KindCustomer, KindAPIList, KindAPICustomer, KindAPIEvents, KindSegmentCount}

// trees are what staff count in the segment builder: profile fields, behaviour in a window,
// spend, and their combinations.
var trees = []string{
	`{"field":"gender","cmp":"eq","value":"female"}`,
	`{"op":"and","children":[{"event":{"name":"咨询","window":{"last_days":30}}},{"order":{"metric":"total","cmp":"gte","value":500}}]}`,
	`{"order":{"metric":"last_at","cmp":"more_than_days_ago","value":60}}`,
	`{"op":"or","children":[{"field":"created_at","cmp":"in_last_days","value":30},{"event":{"name":"Page Viewed","count":{"cmp":"gte","value":3},"window":{"last_days":7}}}]}`,
}

// Stat is what was measured of one kind of request.
type Stat struct {
	Kind      string
	Requests  int
	Errors    int // transport errors and non-2xx answers
	ServerErr int // 5xx answers
	P50, P99  time.Duration
	Max       time.Duration
}

// Report is the outcome of a run.
type Report struct {
	Elapsed        time.Duration
	Stats          []Stat
	EventsAcked    int64   // events in batches answered 200
	EventsPerSec   float64 // acknowledged events per second
	EventsStored   int64   // of this run's events, found in the database afterwards
	Lost           int64   // acknowledged but not stored
	FirstErrors    []string
	PageTargetMet  bool // every console page kind has p99 under 200 ms
	NoServerErrors bool
	// CPU is the CPU time this process (server and clients) used during the run; Cores of the
	// machine and LoadAverage at the end put it in context.
	CPU         time.Duration
	Cores       int
	LoadAverage string
}

// recorder collects latencies per kind.
type recorder struct {
	mu       sync.Mutex
	lat      map[string][]time.Duration
	errs     map[string]int
	fiveXX   map[string]int
	first    []string
	requests atomic.Int64
}

func (r *recorder) add(kind string, d time.Duration, status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat[kind] = append(r.lat[kind], d)
	if err != nil || status < 200 || status > 299 {
		r.errs[kind]++
		if status >= 500 {
			r.fiveXX[kind]++
		}
		if len(r.first) < 10 {
			msg := fmt.Sprintf("%s: status %d", kind, status)
			if err != nil {
				msg = fmt.Sprintf("%s: %v", kind, err)
			}
			r.first = append(r.first, msg)
		}
	}
}

// Run drives the server for opts.Duration (or until opts.MaxRequests), then checks in st that
// every acknowledged event is stored.
func Run(ctx context.Context, st *store.Store, opts Options) (*Report, error) {
	opts.defaults()
	if len(opts.Sessions) == 0 && opts.Staff > 0 {
		return nil, fmt.Errorf("loadtest: no staff sessions")
	}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        opts.Staff + opts.Ingesters + 8,
			MaxIdleConnsPerHost: opts.Staff + opts.Ingesters + 8,
			IdleConnTimeout:     time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	rec := &recorder{lat: map[string][]time.Duration{}, errs: map[string]int{}, fiveXX: map[string]int{}}
	runCtx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	more := func() bool {
		return runCtx.Err() == nil && rec.requests.Add(1) <= opts.MaxRequests
	}

	var (
		wg    sync.WaitGroup
		ackMu sync.Mutex
		acked []string
	)
	start, cpu0 := time.Now(), cpuTime()
	for w := range opts.Ingesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for seq := 0; more(); seq++ {
				body, ids := batch(&opts, rng, w, seq)
				// Requests run on ctx, not runCtx: one in flight at the deadline is answered
				// (and counted) rather than cut off.
				status, d, err := send(ctx, client, "POST", opts.BaseURL+"/v1/batch", body, func(r *http.Request) {
					r.SetBasicAuth(opts.WriteKey, "")
					r.Header.Set("Content-Type", "application/json")
				})
				rec.add(KindBatch, d, status, err)
				if err == nil && status == http.StatusOK {
					ackMu.Lock()
					acked = append(acked, ids...)
					ackMu.Unlock()
				}
			}
		}()
	}
	for s := range opts.Staff {
		wg.Add(1)
		go func() {
			defer wg.Done()
			browse(ctx, runCtx, client, &opts, opts.Sessions[s%len(opts.Sessions)], uint64(s), rec, more)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	rep := &Report{Elapsed: elapsed, EventsAcked: int64(len(acked)), FirstErrors: rec.first, PageTargetMet: true, NoServerErrors: true,
		CPU: cpuTime() - cpu0, Cores: runtime.NumCPU(), LoadAverage: loadAverage()}
	rep.EventsPerSec = float64(rep.EventsAcked) / elapsed.Seconds()
	for _, k := range kinds {
		lat := rec.lat[k]
		if len(lat) == 0 {
			continue
		}
		slices.Sort(lat)
		s := Stat{Kind: k, Requests: len(lat), Errors: rec.errs[k], ServerErr: rec.fiveXX[k],
			P50: quantile(lat, 0.50), P99: quantile(lat, 0.99), Max: lat[len(lat)-1]}
		if s.ServerErr > 0 {
			rep.NoServerErrors = false
		}
		if strings.HasPrefix(k, "page ") && s.P99 >= pageTargetMillis*time.Millisecond {
			rep.PageTargetMet = false
		}
		rep.Stats = append(rep.Stats, s)
	}
	stored, lost, err := verify(ctx, st, opts.RunID, acked)
	if err != nil {
		return rep, fmt.Errorf("loadtest: verify: %w", err)
	}
	rep.EventsStored, rep.Lost = stored, lost
	return rep, nil
}

// batch builds one /v1/batch body: tracks of a few kinds over opts.Users users, now and then
// an identify with traits. Message ids are unique in the run.
func batch(o *Options, rng *rand.Rand, worker, seq int) ([]byte, []string) {
	names := []string{"Page Viewed", "Product Viewed", "咨询", "加购", "领券"}
	msgs := make([]map[string]any, 0, o.BatchSize)
	ids := make([]string, 0, o.BatchSize)
	for i := range o.BatchSize {
		id := fmt.Sprintf("lt-%s-%d-%d-%d", o.RunID, worker, seq, i)
		user := fmt.Sprintf("lt-u-%d", rng.IntN(o.Users))
		m := map[string]any{"type": "track", "messageId": id, "userId": user, "event": names[rng.IntN(len(names))],
			"properties": map[string]any{"sku": fmt.Sprintf("SKU-%d", rng.IntN(300)), "price": rng.IntN(50000) / 100}}
		if i%20 == 0 {
			m = map[string]any{"type": "identify", "messageId": id, "userId": user, "traits": map[string]any{"name": "压测" + user[5:], "city": "杭州"}}
		}
		msgs = append(msgs, m)
		ids = append(ids, id)
	}
	b, _ := json.Marshal(map[string]any{"batch": msgs})
	return b, ids
}

// browse is one staff member's session: the work bench, the customer list, a segment count,
// a customer's profile, and the same through the JSON API, with a pause between requests.
func browse(ctx, runCtx context.Context, client *http.Client, o *Options, session Session, seed uint64, rec *recorder, more func() bool) {
	rng := rand.New(rand.NewPCG(seed, 2))
	cookie := func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: o.SessionCookie, Value: session.Token})
		if r.Method == "POST" {
			r.Header.Set("X-CSRF-Token", session.CSRF)
			r.Header.Set("Content-Type", "application/json")
		}
	}
	var ids []int64
	get := func(kind, path string) []byte {
		if !more() {
			return nil
		}
		method, body := "GET", ""
		if kind == KindSegmentCount {
			method, body = "POST", `{"tree":`+trees[rng.IntN(len(trees))]+`}`
		}
		status, d, answer, err := fetch(ctx, client, method, o.BaseURL+path, body, cookie)
		rec.add(kind, d, status, err)
		if o.Think > 0 {
			select {
			case <-runCtx.Done():
			case <-time.After(time.Duration(rng.Int64N(int64(o.Think)))):
			}
		}
		if status != http.StatusOK {
			return nil
		}
		return answer
	}
	for runCtx.Err() == nil {
		get(KindHome, "/")
		get(KindCustomers, "/customers")
		get(KindSegmentCount, "/api/v1/segments/count")
		if body := get(KindAPIList, "/api/v1/customers?limit=50&sort=last_seen_at&order=desc"); body != nil {
			var list struct {
				Customers []struct {
					ID int64 `json:"id"`
				} `json:"customers"`
			}
			if json.Unmarshal(body, &list) == nil && len(list.Customers) > 0 {
				ids = ids[:0]
				for _, c := range list.Customers {
					ids = append(ids, c.ID)
				}
			}
		}
		for range 3 {
			if len(ids) == 0 || runCtx.Err() != nil {
				break
			}
			id := ids[rng.IntN(len(ids))]
			get(KindCustomer, fmt.Sprintf("/customers/%d", id))
			get(KindAPICustomer, fmt.Sprintf("/api/v1/customers/%d", id))
			get(KindAPIEvents, fmt.Sprintf("/api/v1/customers/%d/events", id))
		}
	}
}

func send(ctx context.Context, client *http.Client, method, url string, body []byte, prepare func(*http.Request)) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	prepare(req)
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t), err
}

func fetch(ctx context.Context, client *http.Client, method, url, body string, prepare func(*http.Request)) (int, time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, 0, nil, err
	}
	prepare(req)
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t), nil, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(t), answer, err
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// verify reads this run's message ids from the events table and checks each acknowledged one
// among them.
func verify(ctx context.Context, st *store.Store, runID string, acked []string) (stored, lost int64, err error) {
	prefix := "lt-" + runID + "-"
	rows, err := st.DB().QueryContext(ctx, `SELECT message_id FROM events WHERE message_id LIKE ?`, prefix+"%")
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	have := make(map[string]struct{}, len(acked))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, 0, err
		}
		have[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, id := range acked {
		if _, ok := have[id]; !ok {
			lost++
		}
	}
	return int64(len(have)), lost, nil
}

// String prints the report as a table with the verdicts.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Load test: %v", r.Elapsed.Round(time.Millisecond))
	if r.CPU > 0 {
		fmt.Fprintf(&b, "; siyu and its clients used %.2f of %d cores", r.CPU.Seconds()/r.Elapsed.Seconds(), r.Cores)
	}
	if r.LoadAverage != "" {
		fmt.Fprintf(&b, "; load average %s at the end", r.LoadAverage)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\trequests\treq/s\tp50\tp99\tmax\terrors\t5xx\t")
	stats := slices.Clone(r.Stats)
	sort.SliceStable(stats, func(i, j int) bool { return slices.Index(kinds, stats[i].Kind) < slices.Index(kinds, stats[j].Kind) })
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%v\t%v\t%v\t%d\t%d\t\n", s.Kind, s.Requests, float64(s.Requests)/r.Elapsed.Seconds(),
			ms(s.P50), ms(s.P99), ms(s.Max), s.Errors, s.ServerErr)
	}
	tw.Flush()
	fmt.Fprintf(&b, "Ingestion: %d events acknowledged, %.0f events/s; %d acknowledged but not stored (lost)", r.EventsAcked, r.EventsPerSec, r.Lost)
	if extra := r.EventsStored - (r.EventsAcked - r.Lost); extra > 0 {
		// Batches whose answer the deadline cut off: committed, never acknowledged.
		fmt.Fprintf(&b, "; %d more stored than acknowledged (batches in flight at the deadline)", extra)
	}
	b.WriteString("\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(&b, "Targets: no 5xx %s; console page p99 < %d ms %s; no lost writes %s\n",
		verdict(r.NoServerErrors), pageTargetMillis, verdict(r.PageTargetMet), verdict(r.Lost == 0))
	for _, e := range r.FirstErrors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	return b.String()
}

// OK reports whether every target was met.
func (r *Report) OK() bool { return r.NoServerErrors && r.PageTargetMet && r.Lost == 0 }

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
