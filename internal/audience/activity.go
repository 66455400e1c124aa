package audience

import (
	"math"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// dayCounts holds, for one event name (or for orders) on one day, which customers were active
// and how often. The base part is built compactly on rebuild: a bitmap plus counts aligned with
// its iteration order (nil when every count is 1). Changes after the rebuild go into a small
// overlay, so a bitmap never has to be re-aligned.
type dayCounts struct {
	base   *roaring.Bitmap
	counts []uint16         // aligned with base; nil when all are 1
	big    map[uint32]int64 // base counts ≥ 65535
	amount []int64          // orders only: net minor units, aligned with base
	add    map[uint32]int64 // counts added since the rebuild (may be negative for orders)
	addAmt map[uint32]int64 // orders only
	addBM  *roaring.Bitmap  // keys of add
}

func newDayCounts() *dayCounts { return &dayCounts{base: roaring.New(), addBM: roaring.New()} }

// present is every customer with activity that day.
func (d *dayCounts) present() *roaring.Bitmap {
	if d.addBM.IsEmpty() {
		return d.base
	}
	return roaring.Or(d.base, d.addBM)
}

// loadAdd is used while rebuilding: ids arrive in increasing order per day (the rebuild sorts).
func (d *dayCounts) loadAdd(id uint32, count, amount int64, orders bool) {
	d.base.Add(id)
	n := d.base.GetCardinality()
	if count != 1 && d.counts == nil {
		d.counts = make([]uint16, n-1, n)
		for i := range d.counts {
			d.counts[i] = 1
		}
	}
	if d.counts != nil {
		c := count
		if c >= math.MaxUint16 {
			if d.big == nil {
				d.big = map[uint32]int64{}
			}
			d.big[id] = c
			c = math.MaxUint16
		}
		d.counts = append(d.counts, uint16(c))
	}
	if orders {
		d.amount = append(d.amount, amount)
	}
}

// bump adds to a customer's count (and amount) after the rebuild.
func (d *dayCounts) bump(id uint32, count, amount int64, orders bool) {
	if d.add == nil {
		d.add = map[uint32]int64{}
		if orders {
			d.addAmt = map[uint32]int64{}
		}
	}
	d.add[id] += count
	if orders {
		d.addAmt[id] += amount
	}
	d.addBM.Add(id)
}

// each calls fn with every customer's count and amount that day (base plus overlay).
func (d *dayCounts) each(fn func(id uint32, count, amount int64)) {
	i := 0
	it := d.base.Iterator()
	for it.HasNext() {
		id := it.Next()
		c := int64(1)
		if d.counts != nil {
			c = int64(d.counts[i])
			if c == math.MaxUint16 && d.big != nil {
				if b, ok := d.big[id]; ok {
					c = b
				}
			}
		}
		var a int64
		if d.amount != nil {
			a = d.amount[i]
		}
		if d.add != nil {
			if extra, ok := d.add[id]; ok {
				c += extra
				a += d.addAmt[id]
			}
		}
		fn(id, c, a)
		i++
	}
	for id, extra := range d.add {
		if !d.base.Contains(id) {
			fn(id, extra, d.addAmt[id])
		}
	}
}

// countOf returns one customer's count and amount that day.
func (d *dayCounts) countOf(id uint32) (count, amount int64) {
	if d.base.Contains(id) {
		r := int(d.base.Rank(id)) - 1
		count = 1
		if d.counts != nil {
			count = int64(d.counts[r])
			if count == math.MaxUint16 && d.big != nil {
				if b, ok := d.big[id]; ok {
					count = b
				}
			}
		}
		if d.amount != nil {
			amount = d.amount[r]
		}
	}
	count += d.add[id]
	amount += d.addAmt[id]
	return count, amount
}

// activity is one event name's (or the orders') days.
type activity struct {
	days   map[segment.Day]*dayCounts
	orders bool
}

func newActivity(orders bool) *activity {
	return &activity{days: map[segment.Day]*dayCounts{}, orders: orders}
}

func (a *activity) day(d segment.Day) *dayCounts {
	dc := a.days[d]
	if dc == nil {
		dc = newDayCounts()
		a.days[d] = dc
	}
	return dc
}

// inRange returns the days of r that have activity.
func (a *activity) inRange(r segment.Range) []*dayCounts {
	var out []*dayCounts
	for d, dc := range a.days {
		if d >= r.From && d <= r.To {
			out = append(out, dc)
		}
	}
	return out
}

// any is every customer among within active on some day of r; for orders, only those whose
// orders there still count (a refund can take a day's count back to zero).
func (a *activity) any(r segment.Range, within *roaring.Bitmap, sc *scratch) *roaring.Bitmap {
	days := a.inRange(r)
	if !a.orders {
		bs := make([]*roaring.Bitmap, 0, len(days))
		for _, d := range days {
			bs = append(bs, d.present())
		}
		return roaring.And(roaring.FastOr(bs...), within)
	}
	touched := a.sumsIn(days, within, sc)
	defer sc.reset(touched)
	out := roaring.New()
	it := touched.Iterator()
	for it.HasNext() {
		if id := it.Next(); sc.count[id] > 0 {
			out.Add(id)
		}
	}
	return out
}

// sums adds up counts and amounts per customer over days into sc and returns who has any.
// The caller reads sc.count / sc.amount for those ids, then calls sc.reset with them.
func (a *activity) sums(days []*dayCounts, sc *scratch) *roaring.Bitmap {
	touched := roaring.New()
	for _, d := range days {
		touched.Or(d.present())
		d.each(func(id uint32, c, amt int64) {
			sc.count[id] += c
			if a.orders {
				sc.amount[id] += amt
			}
		})
	}
	return touched
}

// sumsIn is sums restricted to the customers in within: when within is small it visits only
// them (a rank look-up per active day) instead of every active customer.
func (a *activity) sumsIn(days []*dayCounts, within *roaring.Bitmap, sc *scratch) *roaring.Bitmap {
	var active uint64
	for _, d := range days {
		active += d.base.GetCardinality() + d.addBM.GetCardinality()
	}
	if within.GetCardinality()*8 > active {
		touched := a.sums(days, sc)
		outside := roaring.AndNot(touched, within)
		sc.reset(outside) // sums of customers outside within are not wanted: clear them now
		touched.And(within)
		return touched
	}
	touched := roaring.New()
	for _, d := range days {
		hit := roaring.And(d.present(), within)
		touched.Or(hit)
		it := hit.Iterator()
		for it.HasNext() {
			id := it.Next()
			c, amt := d.countOf(id)
			sc.count[id] += c
			if a.orders {
				sc.amount[id] += amt
			}
		}
	}
	return touched
}

// scratch holds per-customer sums for one evaluation; it is zero between uses.
type scratch struct {
	count, amount []int64
}

func (sc *scratch) reset(touched *roaring.Bitmap) {
	it := touched.Iterator()
	for it.HasNext() {
		id := it.Next()
		sc.count[id] = 0
		sc.amount[id] = 0
	}
}

// move folds customer from into customer into on every day (a merge).
func (a *activity) move(from, into uint32) {
	for _, d := range a.days {
		c, amt := d.countOf(from)
		if c == 0 && amt == 0 {
			continue
		}
		d.bump(from, -c, -amt, a.orders)
		d.bump(into, c, amt, a.orders)
	}
}
