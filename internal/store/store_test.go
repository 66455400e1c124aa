package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

func str(s string) *string { return &s }

func resolve(t *testing.T, s *store.Store, ids ...customer.Identity) store.Resolution {
	t.Helper()
	var r store.Resolution
	err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		r, err = tx.Resolve(ids, "test")
		return err
	})
	if err != nil {
		t.Fatalf("resolve %v: %v", ids, err)
	}
	return r
}

func insertEvent(t *testing.T, s *store.Store, e *event.Event) bool {
	t.Helper()
	var ok []bool
	err := s.InTx(ctx, func(tx *store.Tx) error {
		var err error
		ok, err = tx.InsertEvents([]*event.Event{e})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ok[0]
}

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		n, err := s.Migrate(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second migrate applied %d, err %v; want 0, nil", n, err)
		}
		v, err := s.Version(ctx)
		if err != nil || v != store.SchemaVersion() {
			t.Fatalf("version %d, %v; want %d", v, err, store.SchemaVersion())
		}
	})
}

func TestResolveCreatesThenFinds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a := resolve(t, s, customer.Identity{Kind: customer.AnonymousID, Value: "anon-1"})
		if !a.Created || a.CustomerID == 0 {
			t.Fatalf("first resolve: %+v, want created", a)
		}
		b := resolve(t, s, customer.Identity{Kind: customer.AnonymousID, Value: "anon-1"})
		if b.Created || b.CustomerID != a.CustomerID {
			t.Fatalf("second resolve: %+v, want customer %d", b, a.CustomerID)
		}
	})
}

func TestIdentifyMergesAnonymousIntoUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		anon := resolve(t, s, customer.Identity{Kind: customer.AnonymousID, Value: "a1"}).CustomerID
		user := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u1"}).CustomerID
		insertEvent(t, s, &event.Event{MessageID: "m1", CustomerID: anon, Type: "track", Name: "Viewed", Timestamp: time.Now()})
		err := s.InTx(ctx, func(tx *store.Tx) error {
			p := &customer.Patch{Name: str("王芳"), Attrs: map[string]any{"hobby": "跑步"}}
			if err := tx.CheckPatch(p); err != nil {
				return err
			}
			if err := tx.ApplyPatch(anon, p); err != nil {
				return err
			}
			_, err := tx.UpsertOrder(&event.Order{OrderID: "o1", CustomerID: anon, AmountMinor: 9900, Currency: "CNY", PaidAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateCustomer(ctx, anon, &customer.Patch{OptOut: map[string]bool{"sms": true}}); err != nil {
			t.Fatal(err)
		}
		r := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u1"}, customer.Identity{Kind: customer.AnonymousID, Value: "a1"})
		if r.CustomerID != user || len(r.Merged) != 1 || r.Merged[0] != anon {
			t.Fatalf("resolve = %+v, want anon %d merged into user %d", r, anon, user)
		}
		c, err := s.Customer(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "王芳" || c.Attrs["hobby"] != "跑步" || len(c.OptOuts) != 1 || c.OptOuts[0] != "sms" {
			t.Fatalf("merged profile = %+v", c)
		}
		evts, _ := s.CustomerEvents(ctx, user, time.Time{}, 10)
		orders, _ := s.CustomerOrders(ctx, user, 10)
		if len(evts) != 1 || len(orders) != 1 {
			t.Fatalf("events %d orders %d follow the merge; want 1 and 1", len(evts), len(orders))
		}
		old, _ := s.Customer(ctx, anon)
		if old.MergedInto != user {
			t.Fatalf("merged customer points to %d, want %d", old.MergedInto, user)
		}
		merges, _ := s.Merges(ctx, user)
		if len(merges) != 1 || merges[0].FromID != anon {
			t.Fatalf("merges = %+v", merges)
		}
		if got := resolve(t, s, customer.Identity{Kind: customer.AnonymousID, Value: "a1"}); got.CustomerID != user {
			t.Fatalf("anonymous id now resolves to %d, want %d", got.CustomerID, user)
		}
		n, _ := s.CountCustomers(ctx, store.CustomerFilter{})
		if n != 1 {
			t.Fatalf("%d customers listed after merge, want 1", n)
		}
	})
}

func TestTwoUserIDsNeverMerge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		u1 := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u1"}, customer.Identity{Kind: customer.PhoneID, Value: "13800000000"}).CustomerID
		r := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u2"}, customer.Identity{Kind: customer.PhoneID, Value: "13800000000"})
		if r.CustomerID == u1 || len(r.Merged) != 0 {
			t.Fatalf("u2 resolved to %+v; want a customer of its own, not u1 (%d)", r, u1)
		}
		if got := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u1"}).CustomerID; got != u1 {
			t.Fatalf("u1 moved to %d", got)
		}
	})
}

func TestEventsAreIdempotentByMessageID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		e := &event.Event{MessageID: "dup", CustomerID: c, Type: "track", Name: "加企微", Properties: map[string]any{"staff": "李雷", "n": 2.0}, Timestamp: time.UnixMilli(1700000000123)}
		if !insertEvent(t, s, e) {
			t.Fatal("first insert not new")
		}
		if insertEvent(t, s, &event.Event{MessageID: "dup", CustomerID: c, Type: "track", Name: "other", Timestamp: time.Now()}) {
			t.Fatal("retry inserted again")
		}
		n, _ := s.CountEvents(ctx)
		got, err := s.EventByMessageID(ctx, "dup")
		if n != 1 || err != nil || got.Name != "加企微" || got.Properties["staff"] != "李雷" || !got.Timestamp.Equal(e.Timestamp) {
			t.Fatalf("stored %d events, %+v, %v", n, got, err)
		}
	})
}

func TestOrdersAndRefunds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		do := func(fn func(tx *store.Tx) error) error { return s.InTx(ctx, fn) }
		err := do(func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "o-1", CustomerID: c, AmountMinor: 10000, Currency: "CNY", PaidAt: time.Now(), Products: []event.Product{{SKU: "A", Quantity: 2, PriceMinor: 5000}}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := do(func(tx *store.Tx) error { return tx.RefundOrder(event.Refund{OrderID: "o-1", AmountMinor: 3000}) }); err != nil {
			t.Fatal(err)
		}
		o, _ := s.Order(ctx, "o-1")
		if o.Status != event.PartiallyRefunded || o.RefundedMinor != 3000 || o.NetMinor() != 7000 || len(o.Products) != 1 {
			t.Fatalf("after partial refund: %+v", o)
		}
		if err := do(func(tx *store.Tx) error { return tx.RefundOrder(event.Refund{OrderID: "o-1"}) }); err != nil {
			t.Fatal(err)
		}
		o, _ = s.Order(ctx, "o-1")
		if o.Status != event.Refunded || o.RefundedMinor != 10000 {
			t.Fatalf("after full refund: %+v", o)
		}
		err = do(func(tx *store.Tx) error { return tx.RefundOrder(event.Refund{OrderID: "nope"}) })
		var fe *customer.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("refund of unknown order: %v, want field error", err)
		}
	})
}

func TestAttributeTypesAreEnforced(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		if err := s.UpdateCustomer(ctx, c, &customer.Patch{Attrs: map[string]any{"income": 12000.0, "vip": true, "joined": "2024-03-01", "hobbies": []any{"跑步", "瑜伽"}}}); err != nil {
			t.Fatal(err)
		}
		err := s.UpdateCustomer(ctx, c, &customer.Patch{Attrs: map[string]any{"income": "lots"}})
		var fe *customer.FieldError
		if !errors.As(err, &fe) || fe.Field != "attrs.income" {
			t.Fatalf("wrong type: %v, want field error on attrs.income", err)
		}
		if err := s.UpdateCustomer(ctx, c, &customer.Patch{Attrs: map[string]any{"income": "15000"}}); err != nil {
			t.Fatalf("numeric string for a number: %v", err)
		}
		got, _ := s.Customer(ctx, c)
		if got.Attrs["income"] != 15000.0 || got.Attrs["vip"] != true || got.Attrs["joined"] != "2024-03-01" {
			t.Fatalf("attrs = %#v", got.Attrs)
		}
		defs, _ := s.AttrDefs(ctx)
		want := map[string]customer.AttrType{"income": customer.AttrNumber, "vip": customer.AttrBool, "joined": customer.AttrDate, "hobbies": customer.AttrList}
		for _, d := range defs {
			if want[d.Key] != d.Type {
				t.Errorf("attr %s type %s, want %s", d.Key, d.Type, want[d.Key])
			}
		}
	})
}

func TestListCustomersFiltersAndPages(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		owner := &staff.Staff{Login: "li", Name: "李雷", Role: staff.Sales}
		if err := s.CreateStaff(ctx, owner, ""); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 25; i++ {
			c := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: fmt.Sprintf("u%02d", i)}).CustomerID
			p := &customer.Patch{Name: str(fmt.Sprintf("客户%02d", i)), Source: str("小红书"), Phone: str(fmt.Sprintf("1380000%04d", i)), Attrs: map[string]any{"city_tier": "一线", "hobbies": []any{"跑步"}, "member": false, "level": float64(i % 5)}}
			if i%2 == 0 {
				p.Source = str("抖音")
				p.Owner = str("li")
				p.Attrs = map[string]any{"city_tier": "二线", "hobbies": []any{"瑜伽", "阅读"}, "member": true, "level": float64(i % 5)}
			}
			if err := s.UpdateCustomer(ctx, c, p); err != nil {
				t.Fatal(err)
			}
		}
		count := func(f store.CustomerFilter) int64 {
			n, err := s.CountCustomers(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(store.CustomerFilter{Source: "抖音"}); n != 13 {
			t.Errorf("source 抖音: %d, want 13", n)
		}
		if n := count(store.CustomerFilter{OwnerID: owner.ID}); n != 13 {
			t.Errorf("owner: %d, want 13", n)
		}
		if n := count(store.CustomerFilter{OwnerID: -1}); n != 12 {
			t.Errorf("unowned: %d, want 12", n)
		}
		if n := count(store.CustomerFilter{ScopeOwnerID: owner.ID, Source: "小红书"}); n != 0 {
			t.Errorf("scope leak: %d, want 0", n)
		}
		if n := count(store.CustomerFilter{Attrs: map[string]string{"city_tier": "一线"}}); n != 12 {
			t.Errorf("attr: %d, want 12", n)
		}
		if n := count(store.CustomerFilter{Attrs: map[string]string{"hobbies": "阅读"}}); n != 13 {
			t.Errorf("list attr contains: %d, want 13", n)
		}
		// Bool and number attributes compare as their JSON text on both engines.
		for v, want := range map[string]int64{"true": 13, "false": 12, "1": 0, "0": 0} {
			if n := count(store.CustomerFilter{Attrs: map[string]string{"member": v}}); n != want {
				t.Errorf("bool attr member=%s: %d, want %d", v, n, want)
			}
		}
		if n := count(store.CustomerFilter{Attrs: map[string]string{"level": "3"}}); n != 5 {
			t.Errorf("number attr level=3: %d, want 5", n)
		}
		if n := count(store.CustomerFilter{Q: "客户1"}); n != 10 {
			t.Errorf("q name: %d, want 10", n)
		}
		if n := count(store.CustomerFilter{Q: "13800000007"}); n != 1 {
			t.Errorf("q phone: %d, want 1", n)
		}
		if n := count(store.CustomerFilter{Q: "u07"}); n != 1 {
			t.Errorf("q identity: %d, want 1", n)
		}
		if n := count(store.CustomerFilter{Q: "%' OR 1=1 --"}); n != 0 {
			t.Errorf("q injection: %d, want 0", n)
		}
		for _, sort := range []string{"id", "name", "created_at"} {
			for _, desc := range []bool{false, true} {
				seen := map[int64]bool{}
				f := store.CustomerFilter{Sort: sort, Desc: desc, Limit: 7}
				var prev string
				for pages := 0; ; pages++ {
					p, err := s.ListCustomers(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					for _, c := range p.Customers {
						if seen[c.ID] {
							t.Fatalf("sort %s desc %v: customer %d twice", sort, desc, c.ID)
						}
						seen[c.ID] = true
						if sort == "name" && prev != "" && (desc && c.Name > prev || !desc && c.Name < prev) {
							t.Fatalf("sort name desc %v: %s after %s", desc, c.Name, prev)
						}
						prev = c.Name
					}
					if p.NextCursor == "" {
						break
					}
					f.Cursor = p.NextCursor
				}
				if len(seen) != 25 {
					t.Fatalf("sort %s desc %v: paged through %d customers, want 25", sort, desc, len(seen))
				}
			}
		}
		if _, err := s.ListCustomers(ctx, store.CustomerFilter{Cursor: "garbage!"}); err == nil {
			t.Error("bad cursor accepted")
		}
	})
}

func TestStaffSessionsAndKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		m := &staff.Staff{Login: "admin", Name: "管理员", Email: "a@example.com", Role: staff.Admin}
		if err := s.CreateStaff(ctx, m, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateStaff(ctx, &staff.Staff{Login: "admin", Name: "x", Role: staff.Sales}, ""); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate login: %v, want ErrConflict", err)
		}
		if _, err := s.CheckLogin(ctx, "admin", "wrong password!"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("wrong password: %v", err)
		}
		if got, err := s.CheckLogin(ctx, "a@example.com", "correct horse battery"); err != nil || got.ID != m.ID {
			t.Fatalf("login by email: %v %v", got, err)
		}
		tok, sess, err := s.CreateSession(ctx, m.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got, who, err := s.Session(ctx, tok)
		if err != nil || who.ID != m.ID || got.CSRF != sess.CSRF {
			t.Fatalf("session: %+v %+v %v", got, who, err)
		}
		if err := s.SetPassword(ctx, m.ID, "another long password"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Session(ctx, tok); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survives a password change: %v", err)
		}
		k, secret, err := s.CreateKey(ctx, staff.WriteKey, "shop", "", m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.KeyBySecret(ctx, staff.WriteKey, secret); err != nil || got.ID != k.ID {
			t.Fatalf("key by secret: %v %v", got, err)
		}
		if _, err := s.KeyBySecret(ctx, staff.APIKey, secret); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("write key used as api key: %v", err)
		}
		if err := s.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.KeyBySecret(ctx, staff.WriteKey, secret); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked key works: %v", err)
		}
	})
}

func TestEnsureAdminOnlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		created, pw, err := s.EnsureAdmin(ctx, "")
		if err != nil || !created || len(pw) < 10 {
			t.Fatalf("first: %v %q %v", created, pw, err)
		}
		if _, err := s.CheckLogin(ctx, "admin", pw); err != nil {
			t.Fatalf("printed password does not sign in: %v", err)
		}
		created, pw, err = s.EnsureAdmin(ctx, "")
		if err != nil || created || pw != "" {
			t.Fatalf("second: %v %q %v", created, pw, err)
		}
	})
}

func TestCommitsPublishChanges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		var got []*store.Changes
		s.Subscribe(func(c *store.Changes) { got = append(got, c) })
		anon := resolve(t, s, customer.Identity{Kind: customer.AnonymousID, Value: "a"}).CustomerID
		user := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		if len(got) != 2 || got[0].Customers[0] != anon || got[1].Customers[0] != user {
			t.Fatalf("creations published %+v", got)
		}
		got = nil
		err := s.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.InsertEvents([]*event.Event{{MessageID: "e1", CustomerID: anon, Type: "track", Name: "入群", Timestamp: time.UnixMilli(1000)}}); err != nil {
				return err
			}
			if err := tx.Savepoint("sp"); err != nil {
				return err
			}
			if _, err := tx.InsertEvents([]*event.Event{{MessageID: "e2", CustomerID: anon, Type: "track", Name: "gone", Timestamp: time.UnixMilli(2000)}}); err != nil {
				return err
			}
			if err := tx.RollbackTo("sp"); err != nil {
				return err
			}
			_, err := tx.Resolve([]customer.Identity{{Kind: customer.UserID, Value: "u"}, {Kind: customer.AnonymousID, Value: "a"}}, "test")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].Name != "入群" || len(got[0].Merges) != 1 || got[0].Merges[0] != (store.MergeChange{From: anon, Into: user}) {
			t.Fatalf("published %+v", got)
		}
		got = nil
		s.InTx(ctx, func(tx *store.Tx) error {
			tx.InsertEvents([]*event.Event{{MessageID: "e3", CustomerID: user, Type: "track", Name: "x", Timestamp: time.Now()}})
			return errors.New("roll back")
		})
		if len(got) != 0 {
			t.Fatalf("a rolled back transaction published %+v", got)
		}
	})
}
