package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestWorkbenchCountsAndScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := time.Date(2025, 3, 12, 15, 0, 0, 0, time.UTC) // a Wednesday
		s.SetClock(func() time.Time { return now })
		sales := &staff.Staff{Login: "li", Name: "李雷", Role: staff.Sales}
		if err := s.CreateStaff(ctx, sales, ""); err != nil {
			t.Fatal(err)
		}
		day := time.Date(2025, 3, 12, 0, 0, 0, 0, time.UTC)
		week, month := day.AddDate(0, 0, -2), time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
		mine := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "mine"}).CustomerID
		other := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "other"}).CustomerID
		old := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "old"}).CustomerID
		if err := s.UpdateCustomer(ctx, mine, &customer.Patch{Owner: str("li")}); err != nil {
			t.Fatal(err)
		}
		lastMonth := now.AddDate(0, -1, 0)
		if err := s.UpdateCustomer(ctx, old, &customer.Patch{CreatedAt: &lastMonth}); err != nil {
			t.Fatal(err)
		}
		insertEvent(t, s, &event.Event{MessageID: "e1", CustomerID: mine, Type: "track", Name: "a", Timestamp: now})
		insertEvent(t, s, &event.Event{MessageID: "e2", CustomerID: other, Type: "track", Name: "a", Timestamp: now})
		insertEvent(t, s, &event.Event{MessageID: "e3", CustomerID: other, Type: "track", Name: "a", Timestamp: day.Add(-time.Hour)})
		err := s.InTx(ctx, func(tx *store.Tx) error {
			for _, o := range []*event.Order{
				{OrderID: "o1", CustomerID: mine, AmountMinor: 10000, Currency: "CNY", PaidAt: now},
				{OrderID: "o2", CustomerID: other, AmountMinor: 2550, Currency: "CNY", PaidAt: now},
				{OrderID: "o3", CustomerID: other, AmountMinor: 700, Currency: "USD", PaidAt: now},
				{OrderID: "o4", CustomerID: other, AmountMinor: 99900, Currency: "CNY", PaidAt: lastMonth},
			} {
				if _, err := tx.UpsertOrder(o); err != nil {
					return err
				}
			}
			return tx.RefundOrder(event.Refund{OrderID: "o1", AmountMinor: 1000})
		})
		if err != nil {
			t.Fatal(err)
		}
		all, err := s.Workbench(ctx, staff.CustomerScope{}, day, week, month)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(store.WorkbenchStats{Customers: 3, NewThisWeek: 2, EventsToday: 2, OrdersThisMonth: 3,
			GMVThisMonth: []store.Amount{{Currency: "CNY", Minor: 11550, Orders: 2}, {Currency: "USD", Minor: 700, Orders: 1}}})
		if got := fmt.Sprint(*all); got != want {
			t.Fatalf("workbench = %s, want %s", got, want)
		}
		own, err := s.Workbench(ctx, staff.OwnersScope(sales.ID), day, week, month)
		if err != nil {
			t.Fatal(err)
		}
		want = fmt.Sprint(store.WorkbenchStats{Customers: 1, NewThisWeek: 1, EventsToday: 1, OrdersThisMonth: 1,
			GMVThisMonth: []store.Amount{{Currency: "CNY", Minor: 9000, Orders: 1}}})
		if got := fmt.Sprint(*own); got != want {
			t.Fatalf("sales workbench = %s, want %s", got, want)
		}
	})
}

func TestCountUpToAndSources(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		var id int64
		for i, src := range []string{"渠道活码", "小程序", "渠道活码", "", "直播"} {
			id = resolve(t, s, customer.Identity{Kind: customer.UserID, Value: fmt.Sprint("u", i)}).CustomerID
			if err := s.UpdateCustomer(ctx, id, &customer.Patch{Source: str(src)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			f     store.CustomerFilter
			limit int64
			want  int64
		}{
			{store.CustomerFilter{}, 100, 5},
			{store.CustomerFilter{}, 3, 4}, // capped: limit+1 means "more than limit"
			{store.CustomerFilter{Source: "渠道活码"}, 100, 2},
		} {
			if n, err := s.CountCustomersUpTo(ctx, c.f, c.limit); err != nil || n != c.want {
				t.Errorf("CountCustomersUpTo(%+v, %d) = %d, %v; want %d", c.f, c.limit, n, err, c.want)
			}
		}
		srcs, err := s.CustomerSources(ctx, 10)
		if err != nil || fmt.Sprint(srcs) != fmt.Sprint([]string{"小程序", "渠道活码", "直播"}) {
			t.Fatalf("sources = %q, %v", srcs, err)
		}
		if srcs, _ := s.CustomerSources(ctx, 2); len(srcs) != 2 {
			t.Fatalf("sources limited to 2 = %q", srcs)
		}

	})
}
