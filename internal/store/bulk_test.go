package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestBulkInsertReadsBackAndKeepsSequences(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		at := time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)
		members := []*staff.Staff{{Login: "sales01", Name: "王芳", Department: "销售一部", Role: staff.Sales, CreatedAt: at}}
		cs := []*customer.Customer{
			{ID: 1, Name: "李娜", Gender: "female", Region: "广东省深圳市", Phone: "13800000001", Source: "渠道活码", Attrs: map[string]any{"会员等级": "金卡", "hobbies": []string{"跑步", "阅读"}}, OptOuts: []string{"sms"}, CreatedAt: at, LastSeenAt: at.Add(time.Hour)},
			{ID: 2, Name: "O'Brien; DROP TABLE customers;--", CreatedAt: at},
		}
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertStaff(members, ""); err != nil {
				return err
			}
			cs[0].OwnerID = members[0].ID
			if err := tx.BulkInsertAttrDefs([]customer.AttrDef{{Key: "会员等级", Type: customer.AttrString, Label: "会员等级", CreatedAt: at}, {Key: "hobbies", Type: customer.AttrList, CreatedAt: at}}); err != nil {
				return err
			}
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			if err := tx.BulkInsertIdentities([]store.BulkIdentity{{CustomerID: 1, Kind: customer.PhoneID, Value: "13800000001", CreatedAt: at}, {CustomerID: 2, Kind: customer.UserID, Value: "u2", CreatedAt: at}}); err != nil {
				return err
			}
			evts := make([]*event.Event, 5000) // more than one statement's worth
			for i := range evts {
				evts[i] = &event.Event{MessageID: "m" + string(rune('a'+i%26)) + itoa(i), CustomerID: 1, Type: "track", Name: "打卡", Properties: map[string]any{"day": i}, Timestamp: at.Add(time.Duration(i) * time.Minute)}
			}
			if err := tx.BulkInsertEvents(evts); err != nil {
				return err
			}
			return tx.BulkInsertOrders([]*event.Order{{OrderID: "o1", CustomerID: 1, AmountMinor: 9900, RefundedMinor: 9900, Status: event.Refunded, Currency: "CNY", PaidAt: at, RefundedAt: at.Add(48 * time.Hour), Products: []event.Product{{Name: "面膜", PriceMinor: 9900, Quantity: 1}}, Source: "demo"}})
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Customer(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "李娜" || c.OwnerID != members[0].ID || c.Attrs["会员等级"] != "金卡" || len(c.OptOuts) != 1 || !c.LastSeenAt.Equal(at.Add(time.Hour)) || !c.UpdatedAt.Equal(at) {
			t.Errorf("customer read back as %+v", c)
		}
		if c2, _ := s.Customer(ctx, 2); c2.Name != cs[1].Name {
			t.Errorf("name stored as %q", c2.Name)
		}
		if n, _ := s.CountEvents(ctx); n != 5000 {
			t.Errorf("%d events", n)
		}
		o, err := s.Order(ctx, "o1")
		if err != nil || o.Status != event.Refunded || o.RefundedMinor != 9900 || o.Products[0].Name != "面膜" {
			t.Errorf("order %+v, %v", o, err)
		}
		// A customer created the ordinary way gets an id past the bulk-loaded ones.
		r := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "new"})
		if r.CustomerID != 3 {
			t.Errorf("next customer id %d, want 3", r.CustomerID)
		}
		// Identities stay unique.
		err = s.InTx(ctx, func(tx *store.Tx) error {
			return tx.BulkInsertIdentities([]store.BulkIdentity{{CustomerID: 2, Kind: customer.PhoneID, Value: "13800000001", CreatedAt: at}})
		})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate identity: %v, want ErrConflict", err)
		}
	})
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func updatedAt(t *testing.T, s *store.Store, query string, arg any) int64 {
	t.Helper()
	if s.Engine() == store.Postgres {
		query = query[:len(query)-1] + "$1"
	}
	var v int64
	if err := s.DB().QueryRowContext(ctx, query, arg).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSamePatchAndOrderTwiceWriteNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return now })
		if err := s.CreateStaff(ctx, &staff.Staff{Login: "sales01", Name: "王芳", Role: staff.Sales}, ""); err != nil {
			t.Fatal(err)
		}
		id := resolve(t, s, customer.Identity{Kind: customer.PhoneID, Value: "13900000000"}).CustomerID
		created := now.Add(-24 * time.Hour)
		patch := func() *customer.Patch {
			return &customer.Patch{Name: str("张伟"), Gender: str("男"), Birthday: str("1990/1/2"), Owner: str("sales01"), CreatedAt: &created,
				Attrs: map[string]any{"hobbies": "跑步,阅读", "income": 12000.0}, OptOut: map[string]bool{"sms": true}}
		}
		changed := func() bool {
			var ch bool
			err := s.InTx(ctx, func(tx *store.Tx) error {
				p := patch()
				if err := tx.CheckPatch(p); err != nil {
					return err
				}
				var err error
				ch, err = tx.PatchChanges(id, p)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}
		if !changed() {
			t.Fatal("first patch reported as no change")
		}
		if err := s.UpdateCustomer(ctx, id, patch()); err != nil {
			t.Fatal(err)
		}
		first := updatedAt(t, s, `SELECT updated_at FROM customers WHERE id = ?`, id)
		now = now.Add(time.Hour)
		if changed() {
			t.Fatal("same patch again reported as a change")
		}
		if err := s.UpdateCustomer(ctx, id, patch()); err != nil {
			t.Fatal(err)
		}
		if again := updatedAt(t, s, `SELECT updated_at FROM customers WHERE id = ?`, id); again != first {
			t.Errorf("updated_at moved from %d to %d on a no-op patch", first, again)
		}

		order := func(amount int64) *event.Order {
			return &event.Order{OrderID: "T1", CustomerID: id, AmountMinor: amount, Currency: "CNY", PaidAt: created, Products: []event.Product{{Name: "精华液", PriceMinor: amount, Quantity: 1}}}
		}
		upsert := func(o *event.Order) {
			if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.UpsertOrder(o); return err }); err != nil {
				t.Fatal(err)
			}
		}
		upsert(order(19900))
		first = updatedAt(t, s, `SELECT updated_at FROM orders WHERE order_id = ?`, "T1")
		now = now.Add(time.Hour)
		upsert(order(19900))
		if again := updatedAt(t, s, `SELECT updated_at FROM orders WHERE order_id = ?`, "T1"); again != first {
			t.Errorf("order updated_at moved on a resend")
		}
		upsert(order(18900))
		if again := updatedAt(t, s, `SELECT updated_at FROM orders WHERE order_id = ?`, "T1"); again == first {
			t.Errorf("order updated_at did not move on a change")
		}
	})
}

func TestDropAndCreateIndexes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		countIdx := func() int {
			q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL`
			if s.Engine() == store.Postgres {
				q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events' AND indexname NOT IN (SELECT conname FROM pg_constraint)`
			}
			var n int
			if err := s.DB().QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := countIdx()
		if before < 2 {
			t.Fatalf("%d secondary indexes on events", before)
		}
		var defs []string
		err := s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			defs, err = tx.DropIndexes(func(name string) bool { return name == "events_customer_ts" }, "events")
			return err
		})
		if err != nil || len(defs) != before-1 || countIdx() != 1 {
			t.Fatalf("dropped %d of %d (%v), %d left", len(defs), before, err, countIdx())
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.CreateIndexes(defs) }); err != nil {
			t.Fatal(err)
		}
		if countIdx() != before {
			t.Errorf("%d indexes after recreating, want %d", countIdx(), before)
		}
	})
}
