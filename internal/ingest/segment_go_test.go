package ingest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	analytics "gopkg.in/segmentio/analytics-go.v3"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// lossyServer stores every request but loses the answer to the first attempt of each batch
// (identified by its message ids: clients may refresh sentAt when they retry): the connection
// is closed after the handler has written the messages, as when a proxy or the network drops a
// response. The client must retry, and the retry must change nothing.
type lossyServer struct {
	h http.Handler

	mu   sync.Mutex
	seen map[[32]byte]bool
	lost int
}

// lostAnswers counts the answers lost so far.
func (l *lossyServer) lostAnswers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *lossyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	var ids struct {
		Batch []struct {
			MessageID string `json:"messageId"`
		} `json:"batch"`
	}
	json.Unmarshal(body, &ids)
	h := sha256.New()
	for _, m := range ids.Batch {
		h.Write([]byte(m.MessageID + "\n"))
	}
	if len(ids.Batch) == 0 {
		h.Write(body)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	l.mu.Lock()
	first := !l.seen[sum]
	l.seen[sum] = true
	l.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !first {
		l.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, r) // stored (the handler answers only after the commit)…
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	l.mu.Lock()
	l.lost++
	l.mu.Unlock()
	conn, _, err := w.(http.Hijacker).Hijack() // …but the answer never arrives
	if err == nil {
		conn.Close()
	}
}

// callback counts deliveries and signals on done when want messages are settled.
type callback struct {
	mu        sync.Mutex
	want      int
	succeeded int
	failed    []error
	done      chan struct{}
}

func (c *callback) settle() {
	if c.succeeded+len(c.failed) == c.want {
		close(c.done)
	}
}

func (c *callback) Success(analytics.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.succeeded++
	c.settle()
}

func (c *callback) Failure(_ analytics.Message, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed = append(c.failed, err)
	c.settle()
}

func TestOfficialGoClientWithLostResponses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		_, secret, err := s.CreateKey(ctx, staff.WriteKey, "go backend", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		lossy := &lossyServer{h: ingest.NewHandler(s, ingest.Options{Log: quiet}), seen: map[[32]byte]bool{}}
		srv := httptest.NewServer(lossy)
		defer srv.Close()
		cb := &callback{done: make(chan struct{})}
		client, err := analytics.NewWithConfig(secret, analytics.Config{
			Endpoint:   srv.URL,
			BatchSize:  7,
			Interval:   20 * time.Millisecond,
			RetryAfter: func(int) time.Duration { return 5 * time.Millisecond },
			Callback:   cb,
			Logger:     testLogger{t},
		})
		if err != nil {
			t.Fatal(err)
		}
		msgs := []analytics.Message{
			analytics.Identify{UserId: "go-u1", AnonymousId: "go-a1", Traits: analytics.NewTraits().SetName("赵六").SetEmail("zl@example.com").Set("plan", "gold")},
			analytics.Page{UserId: "go-u1", Name: "Home", Properties: analytics.NewProperties().SetURL("https://example.com/")},
			analytics.Screen{UserId: "go-u1", Name: "Cart"},
			analytics.Group{UserId: "go-u1", GroupId: "g-1", Traits: analytics.NewTraits().SetName("ACME")},
			analytics.Alias{PreviousId: "go-a2", UserId: "go-u1"},
			analytics.Track{UserId: "go-u1", Event: "Order Completed", Properties: analytics.NewProperties().Set("order_id", "GO-1").SetTotal(88.8).SetCurrency("CNY")},
		}
		for i := range 30 {
			msgs = append(msgs, analytics.Track{AnonymousId: "go-a1", Event: "Viewed", MessageId: fmt.Sprintf("go-track-%d", i), Properties: analytics.NewProperties().Set("i", i)})
		}
		cb.want = len(msgs)
		for _, m := range msgs {
			if err := client.Enqueue(m); err != nil {
				t.Fatal(err)
			}
		}
		// Wait for every message to be settled before closing: a closing client drops the
		// batches it would otherwise retry.
		select {
		case <-cb.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("client settled %d of %d messages in 30s", cb.succeeded+len(cb.failed), len(msgs))
		}
		if err := client.Close(); err != nil {
			t.Fatal(err)
		}
		if len(cb.failed) > 0 || cb.succeeded != len(msgs) {
			t.Fatalf("client: %d delivered, failures %v; want %d delivered", cb.succeeded, cb.failed, len(msgs))
		}
		if lossy.lostAnswers() == 0 {
			t.Fatal("no answer was lost: the test did not exercise retries")
		}
		if n, _ := s.CountEvents(ctx); n != int64(len(msgs)) {
			t.Fatalf("%d events stored, want %d (each message exactly once)", n, len(msgs))
		}
		c := customerByUser(t, s, "go-u1")
		if c.Name != "赵六" || c.Email != "zl@example.com" || c.Attrs["plan"] != "gold" {
			t.Fatalf("customer %+v", c)
		}
		for _, id := range []customer.Identity{{Kind: customer.AnonymousID, Value: "go-a1"}, {Kind: customer.AnonymousID, Value: "go-a2"}} {
			if got, err := s.CustomerByIdentity(ctx, id); err != nil || got != c.ID {
				t.Errorf("%v names customer %d (%v), want %d", id, got, err, c.ID)
			}
		}
		if o, err := s.Order(ctx, "GO-1"); err != nil || o.AmountMinor != 8880 || o.CustomerID != c.ID {
			t.Fatalf("order %+v %v", o, err)
		}
		evts, _ := s.CustomerEvents(ctx, c.ID, time.Time{}, 1000)
		if len(evts) != len(msgs) {
			t.Fatalf("timeline has %d events, want %d", len(evts), len(msgs))
		}
	})
}

func customerByUser(t *testing.T, s *store.Store, userID string) *customer.Customer {
	t.Helper()
	id, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.UserID, Value: userID})
	if err != nil {
		t.Fatalf("customer of %s: %v", userID, err)
	}
	c, err := s.Customer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testLogger sends the client's log lines to the test log.
type testLogger struct{ t *testing.T }

func (l testLogger) Logf(format string, args ...any)   { l.t.Logf(format, args...) }
func (l testLogger) Errorf(format string, args ...any) { l.t.Logf("error: "+format, args...) }
