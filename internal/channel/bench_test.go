package channel_test

import (
	"fmt"
	"testing"

	"github.com/siyu-scrm/siyu/internal/channel"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// BenchmarkPick chooses the next of 50 receivers, most of them full.
func BenchmarkPick(b *testing.B) {
	rs := make([]channel.Receiver, 50)
	today := map[int64]int{}
	for i := range rs {
		rs[i] = channel.Receiver{StaffID: int64(i + 1), DailyCap: 10}
		if i < 45 {
			today[int64(i+1)] = 10
		}
	}
	for i := 0; b.Loop(); i++ {
		channel.Pick(rs, today, int64(i%50+1), 99)
	}
}

// BenchmarkOnAdded applies one add through a code with three receivers inside a transaction
// (record, tags, next receiver), as the WeCom worker does for each callback, on each engine.
func BenchmarkOnAdded(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			svc := channel.NewService(s, quiet)
			var rs []channel.Receiver
			for i := range 3 {
				m := &staff.Staff{Login: fmt.Sprintf("s%d", i), Name: "s", Role: staff.Sales}
				if err := s.CreateStaff(ctx, m, ""); err != nil {
					b.Fatal(err)
				}
				rs = append(rs, channel.Receiver{StaffID: m.ID, DailyCap: 0})
			}
			if _, err := svc.Save(ctx, 0, &channel.Input{Name: "bench", State: "bench", Spec: channel.Spec{Receivers: rs}}, 0); err != nil {
				b.Fatal(err)
			}
			var cust int64
			err := s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				cust, err = tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: "u"}}, t0)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				err := s.InTx(ctx, func(tx *store.Tx) error {
					_, err := svc.OnAdded(tx, channel.Added{Key: fmt.Sprintf("k%d", i), State: "bench", CustomerID: cust, StaffID: rs[i%3].StaffID, At: t0})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
