package store_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func mkStaff(t testing.TB, s *store.Store, login string, role staff.Role) int64 {
	t.Helper()
	m := &staff.Staff{Login: login, Name: login, Role: role}
	if err := s.CreateStaff(ctx, m, ""); err != nil {
		t.Fatalf("create staff %s: %v", login, err)
	}
	return m.ID
}

func ownerOf(t testing.TB, s *store.Store, id int64) int64 {
	t.Helper()
	c, err := s.Customer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c.OwnerID
}

func countWhere(t testing.TB, s *store.Store, query string, args ...any) int64 {
	t.Helper()
	var n int64
	q := query
	if s.Engine() == store.Postgres {
		for i := 1; ; i++ {
			j := indexOf(q, "?")
			if j < 0 {
				break
			}
			q = q[:j] + fmt.Sprintf("$%d", i) + q[j+1:]
		}
	}
	if err := s.DB().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestSetOwnersRecordsHistoryAndEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 3)
		a, b := mkStaff(t, s, "a", staff.Sales), mkStaff(t, s, "b", staff.Sales)
		applied, err := s.SetOwners(ctx, []store.OwnerChange{
			{CustomerID: ids[0], ToID: a, ByStaff: b, Reason: store.OwnerManual, Note: "first"},
			{CustomerID: ids[1], ToID: a, Reason: store.OwnerBulk},
			{CustomerID: 999, ToID: a, Reason: store.OwnerBulk},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !applied[0] || !applied[1] || applied[2] {
			t.Fatalf("applied %v, want true true false (999 does not exist)", applied)
		}
		// Compare-and-set: expecting b as the owner of a customer a owns changes nothing.
		applied, err = s.SetOwners(ctx, []store.OwnerChange{{CustomerID: ids[0], ToID: 0, Reason: store.OwnerRelease}}, []int64{b})
		if err != nil || applied[0] {
			t.Fatalf("applied %v, %v: want a refused compare-and-set", applied, err)
		}
		// The same owner again is no change.
		applied, _ = s.SetOwners(ctx, []store.OwnerChange{{CustomerID: ids[0], ToID: a, Reason: store.OwnerManual}}, nil)
		if applied[0] {
			t.Fatal("same owner again recorded a change")
		}
		applied, _ = s.SetOwners(ctx, []store.OwnerChange{{CustomerID: ids[0], ToID: b, ByStaff: a, Reason: store.OwnerManual}}, []int64{a})
		if !applied[0] || ownerOf(t, s, ids[0]) != b {
			t.Fatal("reassignment a → b not applied")
		}
		h, err := s.OwnerHistory(ctx, ids[0], 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 2 || h[0].FromID != a || h[0].ToID != b || h[0].ByStaff != a || h[1].FromID != 0 || h[1].ToID != a || h[1].Note != "first" {
			t.Fatalf("history %+v", h)
		}
		if n := countWhere(t, s, `SELECT COUNT(*) FROM events WHERE customer_id = ? AND name = ?`, ids[0], store.OwnerChangedEvent); n != 2 {
			t.Fatalf("%d Owner Changed events, want 2", n)
		}
		evts, err := s.CustomerEvents(ctx, ids[0], time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		p := evts[0].Properties
		if fmt.Sprint(p["from_owner_id"]) != fmt.Sprint(a) || fmt.Sprint(p["to_owner_id"]) != fmt.Sprint(b) || p["reason"] != "manual" {
			t.Fatalf("event properties %v", p)
		}
	})
}

// TestClaimRace has two sales people claim the same pool customers at once, one by one:
// every customer ends with exactly one owner and one claim in the history.
func TestClaimRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 30)
		sales := []int64{mkStaff(t, s, "s1", staff.Sales), mkStaff(t, s, "s2", staff.Sales), mkStaff(t, s, "s3", staff.Sales)}
		won := make([][]int64, len(sales))
		var wg sync.WaitGroup
		for k, sid := range sales {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, id := range ids {
					claimed, _, err := s.Claim(ctx, sid, []int64{id}, store.ClaimLimits{}, "")
					if err != nil {
						t.Errorf("claim: %v", err)
						return
					}
					won[k] = append(won[k], claimed...)
				}
			}()
		}
		wg.Wait()
		owner := map[int64]int64{}
		for k, w := range won {
			for _, id := range w {
				if prev, ok := owner[id]; ok {
					t.Fatalf("customer %d claimed by %d and %d", id, prev, sales[k])
				}
				owner[id] = sales[k]
			}
		}
		if len(owner) != len(ids) {
			t.Fatalf("%d customers claimed, want %d", len(owner), len(ids))
		}
		for id, o := range owner {
			if got := ownerOf(t, s, id); got != o {
				t.Fatalf("customer %d owned by %d, the winner was %d", id, got, o)
			}
		}
		if n := countWhere(t, s, `SELECT COUNT(*) FROM owner_history WHERE reason = 'claim'`); n != int64(len(ids)) {
			t.Fatalf("%d claims recorded, want %d", n, len(ids))
		}
	})
}

func TestClaimLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 10)
		a := mkStaff(t, s, "a", staff.Sales)
		day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return day.Add(10 * time.Hour) })
		lim := store.ClaimLimits{PerDay: 3, DayStart: day}
		if _, _, err := s.Claim(ctx, a, ids[:2], lim, ""); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Claim(ctx, a, ids[2:4], lim, "")
		var le *store.ClaimLimitError
		if !errors.As(err, &le) || le.Field != "daily_claim_limit" || le.Have != 2 {
			t.Fatalf("got %v, want the daily limit (2 claimed, 2 asked, limit 3)", err)
		}
		if ownerOf(t, s, ids[2]) != 0 {
			t.Fatal("a refused claim wrote")
		}
		// The next day the count starts again; the total cap still holds.
		s.SetClock(func() time.Time { return day.Add(34 * time.Hour) })
		lim = store.ClaimLimits{PerDay: 3, MaxOwned: 4, DayStart: day.Add(24 * time.Hour)}
		if _, _, err := s.Claim(ctx, a, ids[2:4], lim, ""); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Claim(ctx, a, ids[4:5], lim, "")
		if !errors.As(err, &le) || le.Field != "max_owned" {
			t.Fatalf("got %v, want the max owned limit", err)
		}
		if _, _, err := s.Claim(ctx, 999, ids[5:6], store.ClaimLimits{}, ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("claim by unknown staff: %v", err)
		}
	})
}

func TestEraseCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a := mkStaff(t, s, "a", staff.Sales)
		g := mkGroup(t, s, "兴趣", "attribute", false)
		tg := mkTag(t, s, g.ID, "母婴")
		var keep, gone, merged int64
		err := s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			mk := func(uid, phone, name string) int64 {
				if err != nil {
					return 0
				}
				var id int64
				id, err = tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: uid}, {Kind: customer.PhoneID, Value: phone}}, time.Time{})
				if err == nil {
					n, p := name, phone
					err = tx.ApplyPatch(id, &customer.Patch{Name: &n, Phone: &p, Attrs: map[string]any{"city": "杭州"}})
				}
				return id
			}
			gone, keep, merged = mk("u1", "13800000001", "张三"), mk("u2", "13800000002", "李四"), mk("u3", "13800000003", "张三旧")
			if err != nil {
				return err
			}
			if _, err := tx.InsertEvents([]*event.Event{
				{MessageID: "m1", CustomerID: gone, Type: "track", Name: "Viewed", Timestamp: time.Now()},
				{MessageID: "m2", CustomerID: keep, Type: "track", Name: "Viewed", Timestamp: time.Now()},
			}); err != nil {
				return err
			}
			return tx.Merge(merged, gone, "test")
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetOwners(ctx, []store.OwnerChange{{CustomerID: gone, ToID: a, Reason: store.OwnerManual}}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AssignTags(ctx, []int64{gone}, []int64{tg}, manual); err != nil {
			t.Fatal(err)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "o1", CustomerID: gone, Status: "paid", AmountMinor: 9900, Currency: "CNY", PaidAt: time.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		x, err := s.ExportCustomer(ctx, gone)
		if err != nil {
			t.Fatal(err)
		}
		if x.Profile.Name != "张三" || len(x.Identities) < 2 || len(x.Tags) != 1 || len(x.TagHistory) != 1 || len(x.Orders) != 1 || len(x.OwnerHistory) != 1 || len(x.Merges) != 1 {
			t.Fatalf("export: name %q, %d identities, %d tags, %d tag history, %d orders, %d owner changes, %d merges",
				x.Profile.Name, len(x.Identities), len(x.Tags), len(x.TagHistory), len(x.Orders), len(x.OwnerHistory), len(x.Merges))
		}
		audited := false
		e, err := s.EraseCustomer(ctx, gone, a, "customer request", func(tx *store.Tx, e *store.Erasure) error {
			audited = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !audited || e.Removed["events"] < 1 || e.Removed["identities"] != 4 || e.Removed["tags"] != 1 || e.Removed["profiles"] != 2 {
			t.Fatalf("erasure %+v (audited %v)", e, audited)
		}
		for _, id := range []int64{gone, merged} {
			c, err := s.Customer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != "" || c.Phone != "" || len(c.Attrs) != 0 || c.OwnerID != 0 || c.MergedInto != store.ErasedMark {
				t.Fatalf("customer %d after erasure: %+v", id, c)
			}
		}
		for _, q := range []string{
			`SELECT COUNT(*) FROM identities WHERE customer_id IN (?, ?)`,
			`SELECT COUNT(*) FROM events WHERE customer_id IN (?, ?)`,
			`SELECT COUNT(*) FROM customer_tags WHERE customer_id IN (?, ?)`,
			`SELECT COUNT(*) FROM tag_history WHERE customer_id IN (?, ?)`,
		} {
			if n := countWhere(t, s, q, gone, merged); n != 0 {
				t.Fatalf("%s: %d rows left", q, n)
			}
		}
		// The order stays for revenue, on the tombstone; the other customer is untouched.
		if n := countWhere(t, s, `SELECT COUNT(*) FROM orders WHERE customer_id = ? AND amount_minor = 9900`, gone); n != 1 {
			t.Fatal("the order did not stay")
		}
		if c, _ := s.Customer(ctx, keep); c.Name != "李四" {
			t.Fatal("another customer changed")
		}
		if n := countWhere(t, s, `SELECT COUNT(*) FROM events WHERE customer_id = ?`, keep); n != 1 {
			t.Fatal("another customer's events went")
		}
		page, err := s.ListCustomers(ctx, store.CustomerFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Customers) != 1 || page.Customers[0].ID != keep {
			t.Fatalf("list after erasure: %d customers", len(page.Customers))
		}
		if _, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.PhoneID, Value: "13800000001"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("the phone still resolves")
		}
		rec, err := s.CustomerErasure(ctx, gone)
		if err != nil || rec.Reason != "customer request" || rec.ByStaff != a {
			t.Fatalf("tombstone %+v, %v", rec, err)
		}
		if _, err := s.EraseCustomer(ctx, gone, a, "", nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second erasure: %v", err)
		}
		if _, err := s.ExportCustomer(ctx, gone); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("export of an erased customer: %v", err)
		}
		// An audit step that fails rolls the whole erasure back.
		_, err = s.EraseCustomer(ctx, keep, a, "", func(tx *store.Tx, e *store.Erasure) error { return errors.New("audit down") })
		if err == nil {
			t.Fatal("erasure committed without its audit entry")
		}
		if c, _ := s.Customer(ctx, keep); c.Name != "李四" {
			t.Fatal("a failed erasure wrote")
		}
	})
}

// TestErasureLeavesTheAudience checks that the audience engine drops an erased customer as the
// erasure commits (the change is published), and that a rebuild from the store agrees.
func TestErasureLeavesTheAudience(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ids := bulkCustomers(t, s, 3)
		e := audience.New(s, audience.Options{})
		s.Subscribe(e.Apply)
		if err := e.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if e.Size() != 3 {
			t.Fatalf("engine holds %d customers, want 3", e.Size())
		}
		if _, err := s.EraseCustomer(ctx, ids[1], 0, "", nil); err != nil {
			t.Fatal(err)
		}
		if e.Size() != 2 {
			t.Fatalf("after the erasure the engine holds %d customers, want 2", e.Size())
		}
		fresh := audience.New(s, audience.Options{})
		if err := fresh.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if fresh.Size() != 2 {
			t.Fatalf("a rebuild holds %d customers, want 2", fresh.Size())
		}
		if n, err := s.CountCustomers(ctx, store.CustomerFilter{}); err != nil || n != 2 {
			t.Fatalf("count %d (%v), want 2", n, err)
		}
	})
}

// BenchmarkClaim measures claims from the pool one customer at a time (each its own
// transaction with the limit checks) on SQLite.
func BenchmarkClaim(b *testing.B) {
	s := storetest.Open(b, store.SQLite)
	a := mkStaff(b, s, "a", staff.Sales)
	ids := bulkCustomers(b, s, b.N)
	lim := store.ClaimLimits{PerDay: 1 << 30, MaxOwned: 1 << 30, DayStart: time.Now().Add(-time.Hour)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if claimed, _, err := s.Claim(ctx, a, ids[i:i+1], lim, ""); err != nil || len(claimed) != 1 {
			b.Fatalf("claim: %v %v", claimed, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
}

// BenchmarkEraseCustomer measures erasing a customer with 1,000 events on SQLite.
func BenchmarkEraseCustomer(b *testing.B) {
	s := storetest.Open(b, store.SQLite)
	ids := bulkCustomers(b, s, b.N)
	for i, id := range ids {
		evts := make([]*event.Event, 1000)
		for k := range evts {
			evts[k] = &event.Event{MessageID: fmt.Sprintf("e%d-%d", i, k), CustomerID: id, Type: "track", Name: "Viewed", Timestamp: time.Now()}
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.InsertEvents(evts); return err }); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.EraseCustomer(ctx, ids[i], 0, "", nil); err != nil {
			b.Fatal(err)
		}
	}
}
