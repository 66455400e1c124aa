package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// collector gathers what a store publishes.
type collector struct {
	mu        sync.Mutex
	customers map[int64]int
	events    int
}

func listen(s *store.Store) *collector {
	c := &collector{customers: map[int64]int{}}
	s.Subscribe(func(ch *store.Changes) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, id := range ch.Customers {
			c.customers[id]++
		}
		c.events += len(ch.Events)
	})
	return c
}

func newCustomer(t *testing.T, s *store.Store, phone string) int64 {
	t.Helper()
	var id int64
	err := s.InTx(context.Background(), func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateCustomer([]customer.Identity{{Kind: customer.PhoneID, Value: phone}}, s.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Two processes on one PostgreSQL database: what one commits reaches the other's subscribers
// through the feed, once, and never comes back to the writer.
func TestChangeFeedCarriesCommitsToOtherProcesses(t *testing.T) {
	dsn := storetest.DSN(t, store.Postgres)
	ctx := context.Background()
	open := func() *store.Store {
		s, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	if a.Origin() == b.Origin() {
		t.Fatalf("two processes share the origin %q", a.Origin())
	}
	feedA, err := a.NewChangeFeed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	feedB, err := b.NewChangeFeed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotA, gotB := listen(a), listen(b)

	c1 := newCustomer(t, a, "13800000001")
	c2 := newCustomer(t, a, "13800000002")
	if n, err := feedB.Poll(ctx); err != nil || n != 2 {
		t.Fatalf("b polled %d rows, %v; want 2", n, err)
	}
	if gotB.customers[c1] != 1 || gotB.customers[c2] != 1 {
		t.Fatalf("b saw %v, want %d and %d once", gotB.customers, c1, c2)
	}
	if n, err := feedB.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("b polled again: %d rows, %v; want none", n, err)
	}
	// a's own commits are not published to it a second time.
	if n, err := feedA.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("a polled its own rows: %d, %v", n, err)
	}
	if gotA.customers[c1] != 1 {
		t.Fatalf("a saw its customer %d times", gotA.customers[c1])
	}

	// A transaction that took its feed id before another committed is still carried when it
	// commits later: a slow writer (another process) inserts its row, a larger id commits
	// first, both followers poll, then the slow one commits.
	slow, err := a.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(`INSERT INTO change_feed (origin, at, payload) VALUES ('elsewhere', $1, $2)`, time.Now().UnixMilli(), `{"Customers":[777]}`); err != nil {
		t.Fatal(err)
	}
	c4 := newCustomer(t, b, "13800000004")
	if n, err := feedA.Poll(ctx); err != nil || n != 1 || gotA.customers[c4] != 1 {
		t.Fatalf("a polled %d (%v) and saw %v; want customer %d", n, err, gotA.customers, c4)
	}
	if n, err := feedB.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("b polled %d (%v) before the slow commit; want none", n, err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*store.ChangeFeed{"a": feedA, "b": feedB} {
		if n, err := f.Poll(ctx); err != nil || n != 1 {
			t.Fatalf("%s polled %d (%v) after the slow commit; want its row", name, n, err)
		}
	}
	if gotA.customers[777] != 1 || gotB.customers[777] != 1 || gotB.customers[c4] != 1 {
		t.Fatalf("a saw %v, b saw %v", gotA.customers, gotB.customers)
	}
}

// SQLite is one process: no feed rows, and a follower has nothing to do.
func TestChangeFeedIsIdleOnSQLite(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	f, err := s.NewChangeFeed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listen(s)
	newCustomer(t, s, "13800000009")
	if n, err := f.Poll(ctx); err != nil || n != 0 {
		t.Fatalf("poll: %d, %v", n, err)
	}
	var rows int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM change_feed`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d feed rows on SQLite, %v", rows, err)
	}
}
