package audience

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// LoadSynthetic writes a synthetic population into an empty store, so the same segments can
// be counted as SQL. prog counts customers.
func LoadSynthetic(ctx context.Context, st *store.Store, syn *Synthetic, prog Progress) error {
	err := st.InTx(ctx, func(tx *store.Tx) error {
		members := make([]*staff.Staff, 20)
		for i := range members {
			members[i] = &staff.Staff{Login: fmt.Sprintf("bench%02d", i+1), Name: fmt.Sprintf("Bench %d", i+1), Role: staff.Sales, CreatedAt: syn.Now}
		}
		if err := tx.BulkInsertStaff(members, ""); err != nil {
			return err
		}
		if err := tx.BulkInsertAttrDefs(SynthAttrDefs); err != nil {
			return err
		}
		groups := map[int64]string{}
		tags := map[int64][2]any{}
		for g := int64(1); g <= SynthTagGroups; g++ {
			groups[g] = fmt.Sprintf("组%d", g)
			for k := int64(1); k <= SynthTagsPerGroup; k++ {
				id := (g-1)*SynthTagsPerGroup + k
				tags[id] = [2]any{g, fmt.Sprintf("标签%d", id)}
			}
		}
		return tx.BulkInsertTagVocabulary(groups, tags)
	})
	if err != nil {
		return err
	}
	const chunk = 20000
	for start := int64(1); start <= int64(syn.N); start += chunk {
		end := min(start+chunk-1, int64(syn.N))
		var (
			cs     []*customer.Customer
			evts   []*event.Event
			orders []*event.Order
			pairs  [][2]int64
		)
		for id := start; id <= end; id++ {
			p := syn.Person(id)
			c := p.Customer
			c.OptOuts = p.OptOuts
			cs = append(cs, c)
			for _, t := range p.Tags {
				pairs = append(pairs, [2]int64{id, t})
			}
			for i, e := range p.Events {
				evts = append(evts, &event.Event{MessageID: fmt.Sprintf("syn-%d-%d", id, i), CustomerID: id, Type: "track", Name: e.Name, Timestamp: e.At, ReceivedAt: e.At})
			}
			for i, o := range p.Orders {
				ord := &event.Order{OrderID: fmt.Sprintf("syn-%d-%d", id, i), CustomerID: id, Status: event.Paid, AmountMinor: o.AmountMinor, RefundedMinor: o.RefundedMinor, Currency: "CNY", PaidAt: o.At, Source: "bench"}
				switch {
				case o.RefundedMinor >= o.AmountMinor && o.AmountMinor > 0:
					ord.Status = event.Refunded
				case o.RefundedMinor > 0:
					ord.Status = event.PartiallyRefunded
				}
				if o.RefundedMinor > 0 {
					ord.RefundedAt = o.At.Add(24 * time.Hour)
				}
				orders = append(orders, ord)
			}
		}
		err := st.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			if err := tx.BulkInsertCustomerTags(pairs); err != nil {
				return err
			}
			if err := tx.BulkInsertEvents(evts); err != nil {
				return err
			}
			return tx.BulkInsertOrders(orders)
		})
		if err != nil {
			return err
		}
		if prog != nil {
			prog.Add(end - start + 1)
		}
	}
	if st.Engine() == store.Postgres {
		if _, err := st.DB().ExecContext(ctx, `ANALYZE`); err != nil {
			return err
		}
	}
	return nil
}

// BenchSQL counts each bench tree as SQL on st runs times.
func BenchSQL(ctx context.Context, st *store.Store, now time.Time, runs int) ([]TreeResult, error) {
	trees, err := ParseBenchTrees()
	if err != nil {
		return nil, err
	}
	sch, err := st.SegmentSchema(ctx)
	if err != nil {
		return nil, err
	}
	var out []TreeResult
	for i, t := range trees {
		lat := make([]time.Duration, 0, runs)
		var count int64
		for r := 0; r < runs; r++ {
			t0 := time.Now()
			n, err := st.SegmentCountSQL(ctx, t, sch, now, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", BenchTrees[i].Name, err)
			}
			lat = append(lat, time.Since(t0))
			count = n
		}
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		out = append(out, TreeResult{Name: BenchTrees[i].Name, Count: uint64(count), P50: lat[len(lat)/2], P99: lat[len(lat)-1]})
	}
	return out, nil
}
