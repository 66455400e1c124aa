package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestCustomerEventPageIsExactAcrossEqualTimestamps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		other := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "v"}).CustomerID
		base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		// Seven events, three of them in one millisecond, so a page boundary falls inside it.
		stamps := []time.Time{base, base.Add(time.Second), base.Add(time.Second), base.Add(time.Second), base.Add(2 * time.Second), base.Add(3 * time.Second), base.Add(4 * time.Second)}
		for i, ts := range stamps {
			insertEvent(t, s, &event.Event{MessageID: fmt.Sprintf("m%d", i), CustomerID: id, Type: "track", Name: "Viewed", Timestamp: ts})
		}
		insertEvent(t, s, &event.Event{MessageID: "other", CustomerID: other, Type: "track", Name: "Viewed", Timestamp: base})
		seen := map[string]bool{}
		var last time.Time
		p := store.TimePage{Limit: 2}
		pages := 0
		for {
			page, err := s.CustomerEventPage(ctx, id, p)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range page.Events {
				if seen[e.MessageID] {
					t.Fatalf("event %s twice", e.MessageID)
				}
				if !last.IsZero() && e.Timestamp.After(last) {
					t.Fatalf("event %s out of order", e.MessageID)
				}
				seen[e.MessageID], last = true, e.Timestamp
			}
			if page.NextCursor == "" {
				break
			}
			p.Cursor = page.NextCursor
		}
		if len(seen) != len(stamps) || pages != 4 || seen["other"] {
			t.Fatalf("saw %d events in %d pages (%v), want %d in 4", len(seen), pages, seen, len(stamps))
		}
		page, err := s.CustomerEventPage(ctx, id, store.TimePage{BeforeMS: base.Add(time.Second).UnixMilli()})
		if err != nil || len(page.Events) != 1 || page.Events[0].MessageID != "m0" {
			t.Fatalf("before: %+v, %v; want only m0", page, err)
		}
		var fe *customer.FieldError
		if _, err := s.CustomerEventPage(ctx, id, store.TimePage{Cursor: "'; DROP TABLE events; --"}); !errors.As(err, &fe) || fe.Field != "cursor" {
			t.Fatalf("bad cursor: %v, want a field error on cursor", err)
		}
		if _, err := s.CustomerEventPage(ctx, id, store.TimePage{Limit: 1001}); !errors.As(err, &fe) || fe.Field != "limit" {
			t.Fatalf("limit 1001: %v, want a field error on limit", err)
		}
	})
}

func TestCustomerOrderPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		id := resolve(t, s, customer.Identity{Kind: customer.UserID, Value: "u"}).CustomerID
		paid := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		err := s.InTx(ctx, func(tx *store.Tx) error {
			for i := range 3 {
				if _, err := tx.UpsertOrder(&event.Order{OrderID: fmt.Sprintf("o%d", i), CustomerID: id, AmountMinor: 100, Currency: "CNY", PaidAt: paid}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		first, err := s.CustomerOrderPage(ctx, id, store.TimePage{Limit: 2})
		if err != nil || len(first.Orders) != 2 || first.NextCursor == "" {
			t.Fatalf("first page %+v, %v", first, err)
		}
		second, err := s.CustomerOrderPage(ctx, id, store.TimePage{Limit: 2, Cursor: first.NextCursor})
		if err != nil || len(second.Orders) != 1 || second.NextCursor != "" || second.Orders[0].OrderID != "o0" {
			t.Fatalf("second page %+v, %v", second, err)
		}
	})
}

func TestFillOptOutsAndIdentityOwner(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a := resolve(t, s, customer.Identity{Kind: customer.PhoneID, Value: "13800000000"}).CustomerID
		b := resolve(t, s, customer.Identity{Kind: customer.PhoneID, Value: "13900000000"}).CustomerID
		if err := s.UpdateCustomer(ctx, a, &customer.Patch{OptOut: map[string]bool{"sms": true, "email": true}}); err != nil {
			t.Fatal(err)
		}
		cs := []*customer.Customer{{ID: a}, {ID: b}}
		if err := s.FillOptOuts(ctx, cs); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(cs[0].OptOuts) != "[email sms]" || cs[1].OptOuts == nil || len(cs[1].OptOuts) != 0 {
			t.Fatalf("opt-outs %v and %v, want [email sms] and []", cs[0].OptOuts, cs[1].OptOuts)
		}
		err := s.InTx(ctx, func(tx *store.Tx) error {
			got, err := tx.IdentityOwner(customer.Identity{Kind: customer.PhoneID, Value: "13900000000"})
			if err != nil || got != b {
				return fmt.Errorf("owner of known phone: %d, %v; want %d", got, err, b)
			}
			got, err = tx.IdentityOwner(customer.Identity{Kind: customer.PhoneID, Value: "1' OR '1'='1"})
			if err != nil || got != 0 {
				return fmt.Errorf("owner of unknown phone: %d, %v; want 0", got, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckCustomerCursor(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		for i := range 3 {
			resolve(t, s, customer.Identity{Kind: customer.UserID, Value: fmt.Sprint("u", i)})
		}
		for _, sort := range []string{"", "id", "name", "created_at", "last_seen_at"} {
			page, err := s.ListCustomers(ctx, store.CustomerFilter{Sort: sort, Limit: 1})
			if err != nil || page.NextCursor == "" {
				t.Fatalf("sort %q: %+v, %v", sort, page, err)
			}
			if err := store.CheckCustomerCursor(sort, page.NextCursor); err != nil {
				t.Errorf("sort %q: own cursor refused: %v", sort, err)
			}
		}
		byName, _ := s.ListCustomers(ctx, store.CustomerFilter{Sort: "name", Limit: 1})
		if err := store.CheckCustomerCursor("created_at", byName.NextCursor); err == nil {
			t.Error("a name cursor was accepted for sort created_at")
		}
		if err := store.CheckCustomerCursor("id", "not-base64!"); err == nil {
			t.Error("garbage cursor accepted")
		}
	})
}
