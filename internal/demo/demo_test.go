package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

var anchor = time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)

// checksum hashes every row of every table the demo writes, in key order.
func checksum(t *testing.T, s *store.Store) string {
	t.Helper()
	h := sha256.New()
	for _, q := range []string{
		`SELECT id, login, name, email, department, role, created_at, updated_at FROM staff ORDER BY id`,
		`SELECT key, type, label, created_at FROM attribute_defs ORDER BY key`,
		`SELECT id, name, gender, birthday, region, phone, email, avatar_url, source, COALESCE(owner_id, 0), attrs, created_at, updated_at, last_seen_at FROM customers ORDER BY id`,
		`SELECT kind, value, customer_id, created_at FROM identities ORDER BY kind, value`,
		`SELECT customer_id, channel, created_at FROM customer_optouts ORDER BY customer_id, channel`,
		`SELECT id, message_id, customer_id, type, name, properties, context, ts, received_at FROM events ORDER BY id`,
		`SELECT id, order_id, customer_id, status, amount_minor, refunded_minor, currency, products, paid_at, COALESCE(refunded_at, 0), source, created_at, updated_at FROM orders ORDER BY id`,
	} {
		rows, err := s.DB().QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(h, "%v\x1f", v)
			}
			h.Write([]byte{'\n'})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

func count(t *testing.T, s *store.Store, q string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestGenerate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		const n = 300
		sum, err := Generate(ctx, s, Options{Customers: n, Seed: 7, Anchor: anchor})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", sum)
		if sum.Customers != n || sum.Staff != len(demoStaff) || count(t, s, `SELECT COUNT(*) FROM customers`) != n {
			t.Fatalf("summary %+v", sum)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM events`); got != sum.Events {
			t.Errorf("%d events stored, summary says %d", got, sum.Events)
		}
		if avg := float64(sum.Events) / n; avg < 6 || avg > 20 {
			t.Errorf("%.1f events per customer, want about 10–15", avg)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = c.id)`); got != 0 {
			t.Errorf("%d customers without an identity", got)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM customers c JOIN staff m ON m.id = c.owner_id WHERE m.role <> 'sales'`); got != 0 {
			t.Errorf("%d customers owned by non-sales staff", got)
		}
		if owned := count(t, s, `SELECT COUNT(*) FROM customers WHERE owner_id IS NOT NULL`); owned < n*8/10 {
			t.Errorf("only %d of %d customers have an owner", owned, n)
		}
		never := count(t, s, `SELECT COUNT(*) FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)`)
		repeat := count(t, s, `SELECT COUNT(*) FROM (SELECT customer_id FROM orders GROUP BY customer_id HAVING COUNT(*) >= 3) x`)
		once := count(t, s, `SELECT COUNT(*) FROM (SELECT customer_id FROM orders GROUP BY customer_id HAVING COUNT(*) = 1) x`)
		if never < n*3/10 || never > n*7/10 || repeat < 5 || once < n/10 {
			t.Errorf("buyers: %d never, %d once, %d three times or more", never, once, repeat)
		}
		if r := count(t, s, `SELECT COUNT(*) FROM orders WHERE refunded_minor > 0`); r == 0 || r > sum.Orders/5 {
			t.Errorf("%d refunds of %d orders", r, sum.Orders)
		}
		if bad := count(t, s, `SELECT COUNT(*) FROM orders WHERE amount_minor <= 0 OR refunded_minor > amount_minor OR paid_at > `+fmt.Sprint(anchor.UnixMilli())); bad != 0 {
			t.Errorf("%d impossible orders", bad)
		}
		if bad := count(t, s, `SELECT COUNT(*) FROM events e JOIN customers c ON c.id = e.customer_id WHERE e.ts < c.created_at OR e.ts > `+fmt.Sprint(anchor.UnixMilli())); bad != 0 {
			t.Errorf("%d events outside the customer's life", bad)
		}
		if bad := count(t, s, `SELECT COUNT(*) FROM customers WHERE last_seen_at < created_at`); bad != 0 {
			t.Errorf("%d customers last seen before they arrived", bad)
		}
		if got := count(t, s, `SELECT COUNT(DISTINCT source) FROM customers`); got != 6 {
			t.Errorf("%d sources", got)
		}
		// The evening is busier than the small hours (China time).
		evening := count(t, s, `SELECT COUNT(*) FROM events WHERE ((ts / 3600000) + 8) % 24 BETWEEN 19 AND 22`)
		night := count(t, s, `SELECT COUNT(*) FROM events WHERE ((ts / 3600000) + 8) % 24 BETWEEN 2 AND 5`)
		if evening < 5*night {
			t.Errorf("%d events 19–22h vs %d at 2–5h", evening, night)
		}
		// A second run into the same database is refused.
		if _, err := Generate(ctx, s, Options{Customers: 10, Anchor: anchor}); err == nil {
			t.Error("generated into a database that has customers")
		}
		// Customers created afterwards the ordinary way get fresh ids.
		var id int64
		err = s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			id, err = tx.CreateCustomer(nil, time.Time{})
			return err
		})
		if err != nil || id != n+1 {
			t.Errorf("next id %d, %v", id, err)
		}
	})
}

func TestGenerateIsDeterministic(t *testing.T) {
	for _, eng := range storetest.Engines {
		t.Run(string(eng), func(t *testing.T) {
			opts := Options{Customers: 1100, Seed: 42, Anchor: anchor} // more than one chunk
			a, b := storetest.Open(t, eng), storetest.Open(t, eng)
			if _, err := Generate(ctx, a, opts); err != nil {
				t.Fatal(err)
			}
			if _, err := Generate(ctx, b, opts); err != nil {
				t.Fatal(err)
			}
			if x, y := checksum(t, a), checksum(t, b); x != y {
				t.Fatalf("two runs differ: %s vs %s", x, y)
			}
			c := storetest.Open(t, eng)
			opts.Seed = 43
			if _, err := Generate(ctx, c, opts); err != nil {
				t.Fatal(err)
			}
			if checksum(t, a) == checksum(t, c) {
				t.Fatal("another seed gave the same data")
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := storetest.Open(b, store.SQLite)
		b.StartTimer()
		if _, err := Generate(ctx, s, Options{Customers: 5000, Seed: 1, Anchor: anchor}); err != nil {
			b.Fatal(err)
		}
	}
}
