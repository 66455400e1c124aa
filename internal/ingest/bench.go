package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// BenchOptions shape an ingestion benchmark (siyu bench ingest). Zero fields take defaults.
type BenchOptions struct {
	// Events is the number of track events to send (default 100,000).
	Events int
	// BatchSize is the number of messages per /v1/batch request (default 100).
	BatchSize int
	// Concurrency is the number of clients sending at once (default 4).
	Concurrency int
	// Users is the number of distinct userIds the events spread over (default 1,000).
	Users int
	// NoGroupCommit gives each request its own transaction (to measure what group commit buys).
	NoGroupCommit bool
	// Writers overrides the number of concurrent writer transactions (see Options.Writers).
	Writers int
	// SkipRaw skips the raw insert ceiling.
	SkipRaw bool
	// Log receives progress lines (nil: none).
	Log *slog.Logger
}

func (o *BenchOptions) defaults() {
	if o.Events <= 0 {
		o.Events = 100_000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	o.BatchSize = min(o.BatchSize, MaxBatchMessages)
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Users <= 0 {
		o.Users = 1000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// BenchResult is what a benchmark measured.
type BenchResult struct {
	Engine store.Engine `json:"engine"`
	// Events were sent through the HTTP API in Duration: EventsPerSec, end to end (JSON
	// encoding on the client excluded: bodies are built before the clock starts).
	Events       int           `json:"events"`
	Requests     int           `json:"requests"`
	Duration     time.Duration `json:"duration"`
	EventsPerSec float64       `json:"events_per_sec"`
	// CPUPerEvent is the process CPU time (server and in-process clients) per event.
	CPUPerEvent time.Duration `json:"cpu_per_event"`
	// Transactions is how many transactions the events took (fewer than Requests when group
	// commit merged concurrent requests); WriterLoad is the time spent in transactions divided
	// by Duration (near the number of writers: the database is the bottleneck).
	Transactions int64   `json:"transactions"`
	WriterLoad   float64 `json:"writer_load"`
	// RawEvents equivalent rows were written with plain multi-row INSERTs (store.Tx.InsertEvents,
	// one transaction per BatchSize rows, no HTTP, JSON decoding or identity resolution): the
	// ceiling of the engine on this machine.
	RawEvents       int           `json:"raw_events,omitempty"`
	RawDuration     time.Duration `json:"raw_duration,omitempty"`
	RawEventsPerSec float64       `json:"raw_events_per_sec,omitempty"`
	RawCPUPerEvent  time.Duration `json:"raw_cpu_per_event,omitempty"`
	// Ratio is EventsPerSec / RawEventsPerSec.
	Ratio float64 `json:"ratio,omitempty"`
}

func (r BenchResult) String() string {
	s := fmt.Sprintf("%s: %d events in %d requests, %d transactions (writer load %.2f) in %v: %.0f events/s, %v CPU/event",
		r.Engine, r.Events, r.Requests, r.Transactions, r.WriterLoad, r.Duration.Round(time.Millisecond), r.EventsPerSec, r.CPUPerEvent)
	if r.RawEvents > 0 {
		s += fmt.Sprintf("; raw inserts %d in %v: %.0f events/s, %v CPU/event; ratio %.2f", r.RawEvents, r.RawDuration.Round(time.Millisecond), r.RawEventsPerSec, r.RawCPUPerEvent, r.Ratio)
	}
	return s
}

// Bench sends Events track events through an in-process HTTP server to st, then measures the
// raw insert ceiling of st with equivalent rows. It writes to st: use a scratch database.
func Bench(ctx context.Context, st *store.Store, o BenchOptions) (BenchResult, error) {
	o.defaults()
	res := BenchResult{Engine: st.Engine(), Events: o.Events}
	_, secret, err := st.CreateKey(ctx, staff.WriteKey, "bench", "", 0)
	if err != nil {
		return res, fmt.Errorf("bench: create write key: %w", err)
	}
	run := make([]byte, 6)
	rand.Read(run)
	runID := hex.EncodeToString(run)

	// Build every request body before the clock starts.
	var bodies [][]byte
	start := time.Now().Add(-time.Hour)
	for sent := 0; sent < o.Events; {
		n := min(o.BatchSize, o.Events-sent)
		batch := make([]map[string]any, n)
		for i := range batch {
			k := sent + i
			batch[i] = benchMessage(runID, k, o.Users, start.Add(time.Duration(k)*time.Millisecond))
		}
		b, err := json.Marshal(map[string]any{"batch": batch, "sentAt": time.Now().Format(time.RFC3339Nano)})
		if err != nil {
			return res, err
		}
		bodies = append(bodies, b)
		sent += n
	}
	res.Requests = len(bodies)

	h := NewHandler(st, Options{NoGroupCommit: o.NoGroupCommit, Writers: o.Writers, Log: o.Log})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency, MaxConnsPerHost: o.Concurrency}}
	work := make(chan []byte)
	errc := make(chan error, o.Concurrency)
	var wg sync.WaitGroup
	o.Log.Info("bench: sending", "engine", st.Engine(), "events", o.Events, "requests", len(bodies), "concurrency", o.Concurrency)
	t0, cpu0 := time.Now(), cpuTime()
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := benchPost(ctx, client, srv.URL, secret, b); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var sendErr error
feed:
	for _, b := range bodies {
		select {
		case work <- b:
		case sendErr = <-errc:
			break feed
		case <-ctx.Done():
			sendErr = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	res.Duration = time.Since(t0)
	res.CPUPerEvent = (cpuTime() - cpu0) / time.Duration(o.Events)
	st2 := h.Stats()
	res.Transactions, res.WriterLoad = st2.Transactions, st2.Busy.Seconds()/res.Duration.Seconds()
	if sendErr == nil {
		select {
		case sendErr = <-errc:
		default:
		}
	}
	if sendErr != nil {
		return res, fmt.Errorf("bench: %w", sendErr)
	}
	res.EventsPerSec = float64(o.Events) / res.Duration.Seconds()
	o.Log.Info("bench: HTTP done", "result", res.String())
	if o.SkipRaw {
		return res, nil
	}

	// The raw ceiling: the same rows, for the same customers, straight into the table.
	custs := make([]int64, o.Users)
	for u := range custs {
		id, err := st.CustomerByIdentity(ctx, customer.Identity{Kind: customer.UserID, Value: benchUser(runID, u)})
		if err != nil && err != store.ErrNotFound {
			return res, err
		}
		custs[u] = id
	}
	var batches [][]*event.Event
	for k := 0; k < o.Events; k += o.BatchSize {
		n := min(o.BatchSize, o.Events-k)
		evts := make([]*event.Event, n)
		for i := range evts {
			m := benchMessage(runID, k+i, o.Users, start.Add(time.Duration(k+i)*time.Millisecond))
			evts[i] = &event.Event{MessageID: "raw-" + m["messageId"].(string), CustomerID: custs[(k+i)%o.Users], Type: Track,
				Name: m["event"].(string), Properties: m["properties"].(map[string]any), Context: m["context"].(map[string]any),
				Timestamp: m["timestamp"].(time.Time), ReceivedAt: time.Now()}
		}
		batches = append(batches, evts)
	}
	writers := o.Concurrency
	if st.Engine() == store.SQLite {
		writers = 1 // SQLite has one writer; more only wait on its lock
	}
	rawWork := make(chan []*event.Event)
	rawErr := make(chan error, writers)
	t0, cpu0 = time.Now(), cpuTime()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for evts := range rawWork {
				if err := st.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertEvents(evts); return err }); err != nil {
					rawErr <- err
					return
				}
			}
		}()
	}
	for _, b := range batches {
		select {
		case rawWork <- b:
		case err := <-rawErr:
			close(rawWork)
			wg.Wait()
			return res, fmt.Errorf("bench: raw insert: %w", err)
		}
	}
	close(rawWork)
	wg.Wait()
	res.RawDuration = time.Since(t0)
	res.RawCPUPerEvent = (cpuTime() - cpu0) / time.Duration(o.Events)
	select {
	case err := <-rawErr:
		return res, fmt.Errorf("bench: raw insert: %w", err)
	default:
	}
	res.RawEvents = o.Events
	res.RawEventsPerSec = float64(o.Events) / res.RawDuration.Seconds()
	res.Ratio = res.EventsPerSec / res.RawEventsPerSec
	o.Log.Info("bench: raw done", "result", res.String())
	return res, nil
}

func benchUser(runID string, u int) string { return fmt.Sprintf("bench-%s-u%d", runID, u) }

// benchMessage is the k-th benchmark event: a typical track call of a shop front end.
func benchMessage(runID string, k, users int, at time.Time) map[string]any {
	return map[string]any{
		"type":      Track,
		"messageId": fmt.Sprintf("bench-%s-%d", runID, k),
		"userId":    benchUser(runID, k%users),
		"event":     "Product Viewed",
		"timestamp": at,
		"properties": map[string]any{
			"product_id": fmt.Sprintf("p-%d", k%500),
			"name":       "龙井 250g",
			"category":   "茶叶",
			"price":      128.5,
			"currency":   "CNY",
		},
		"context": map[string]any{
			"ip":      "203.0.113.7",
			"library": map[string]any{"name": "analytics-go", "version": "3.1.0"},
		},
	}
}

func benchPost(ctx context.Context, c *http.Client, url, key string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(key, "")
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", res.StatusCode, b)
	}
	return nil
}
