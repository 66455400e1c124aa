package audience

import (
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// activity is one event name's (or the orders') history, kept in three parts:
//   - days: who was active on each day, as of the rebuild, so that "did it in the window" over
//     many candidates is a union of bitmaps;
//   - entries in a per-customer table built at the rebuild (one table for all event names,
//     another for orders): each customer's active days with counts (and amounts), so that a
//     condition on counts or totals visits its candidates' few entries instead of intersecting
//     every day of the window with the candidates;
//   - an overlay of what changed since the rebuild (new events, merges, changed orders), per
//     customer, with per-day bitmaps of whom it made active.
type activity struct {
	orders bool
	days   map[segment.Day]*roaring.Bitmap
	tab    *table // nil when none of this activity is in a table
	tag    uint32 // this activity's tag in tab's entries
	over   map[uint32][]delta
	overBM *roaring.Bitmap                 // keys of over
	added  map[segment.Day]*roaring.Bitmap // customers with overlay entries, by day
	active activeCache
}

// activeCache keeps, for an event name, who was active in the windows recent queries united
// day bitmaps for, so that the next query intersects one bitmap. A new event adds its customer
// to the windows holding its day; any other change of an activity drops them.
type activeCache struct {
	mu sync.Mutex
	m  map[segment.Range]*roaring.Bitmap
}

// activeCacheSize bounds the windows kept per event name; when full the cache starts afresh.
const activeCacheSize = 4

func (c *activeCache) get(r segment.Range, unite func() *roaring.Bitmap) *roaring.Bitmap {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.m[r]; ok {
		return b
	}
	b := unite()
	if c.m == nil || len(c.m) >= activeCacheSize {
		c.m = map[segment.Range]*roaring.Bitmap{}
	}
	c.m[r] = b
	return b
}

// add records an event of customer id on day d.
func (c *activeCache) add(id uint32, d segment.Day) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r, b := range c.m {
		if r.Contains(d) {
			b.Add(id)
		}
	}
}

func (c *activeCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// delta is an overlay entry: a change of one customer's count (and amount) on one day.
type delta struct {
	day           segment.Day
	count, amount int64
}

func newActivity(orders bool) *activity {
	return &activity{orders: orders, days: map[segment.Day]*roaring.Bitmap{}, over: map[uint32][]delta{}, overBM: roaring.New(), added: map[segment.Day]*roaring.Bitmap{}}
}

// bump adds to a customer's count (and amount) on a day, in the overlay.
func (a *activity) bump(id uint32, d segment.Day, count, amount int64) {
	if a.orders || count < 0 {
		a.active.reset()
	} else {
		a.active.add(id, d)
	}
	ds := a.over[id]
	for i := range ds {
		if ds[i].day == d {
			ds[i].count += count
			ds[i].amount += amount
			a.mark(id, d)
			return
		}
	}
	a.over[id] = append(ds, delta{d, count, amount})
	a.overBM.Add(id)
	a.mark(id, d)
}

func (a *activity) mark(id uint32, d segment.Day) {
	b := a.added[d]
	if b == nil {
		b = roaring.New()
		a.added[d] = b
	}
	b.Add(id)
}

// perDay returns one customer's count and amount on each day it has any (table and overlay).
func (a *activity) perDay(id uint32) map[segment.Day][2]int64 {
	out := map[segment.Day][2]int64{}
	if t := a.tab; t != nil && id+1 < uint32(len(t.off)) {
		for i := t.off[id]; i < t.off[id+1]; i++ {
			e := t.ent[i]
			if e>>24 != a.tag {
				continue
			}
			d := t.base + segment.Day(e>>8&0xffff)
			v := out[d]
			v[0] += int64(e & 0xff)
			if t.amt != nil {
				v[1] += int64(t.amt[i])
			}
			out[d] = v
		}
	}
	for _, x := range a.over[id] {
		v := out[x.day]
		v[0] += x.count
		v[1] += x.amount
		out[x.day] = v
	}
	return out
}

// move folds customer from into customer into on every day (a merge).
func (a *activity) move(from, into uint32) {
	for d, v := range a.perDay(from) {
		if v[0] == 0 && v[1] == 0 {
			continue
		}
		a.bump(from, d, -v[0], -v[1])
		a.bump(into, d, v[0], v[1])
	}
}

// baseIn returns the rebuild's day bitmaps within r and how many entries they hold.
func (a *activity) baseIn(r segment.Range) ([]*roaring.Bitmap, uint64) {
	var out []*roaring.Bitmap
	var n uint64
	for d, b := range a.days {
		if d >= r.From && d <= r.To {
			out = append(out, b)
			n += b.GetCardinality()
		}
	}
	return out, n
}

// any is every customer among within active on some day of r; for orders, only those whose
// orders there still count (a refund can take a day's count back to zero). It visits the candidates when there are fewer than 1/ratio of the active days to union.
func (a *activity) any(r segment.Range, within *roaring.Bitmap, ratio uint64) *roaring.Bitmap {
	if r.From > r.To || within.IsEmpty() {
		return roaring.New()
	}
	base, size := a.baseIn(r)
	if within.GetCardinality()*ratio <= size {
		// Few candidates for many active days: visit the candidates.
		s := a.sumsIn(r, within)
		defer s.release()
		ids := s.ids
		if a.orders {
			ids = ids[:0]
			for i, id := range s.ids {
				if s.count[i] > 0 {
					ids = append(ids, id)
				}
			}
		}
		out := roaring.New()
		out.AddMany(ids)
		return out
	}
	if !a.orders {
		all := a.active.get(r, func() *roaring.Bitmap {
			for d, b := range a.added {
				if d >= r.From && d <= r.To {
					base = append(base, b)
				}
			}
			return roaring.FastOr(base...)
		})
		return roaring.And(all, within)
	}
	out := roaring.And(roaring.FastOr(base...), within)
	// The overlay can add a day's orders or take them back: look at those customers one by one.
	changed := roaring.And(a.overBM, within)
	it := changed.Iterator()
	for it.HasNext() {
		id := it.Next()
		n, _, _ := a.sumOf(id, r)
		if n > 0 {
			out.Add(id)
		} else {
			out.Remove(id)
		}
	}
	return out
}

// sumOf returns one customer's count and amount over r, and whether it has entries there.
func (a *activity) sumOf(id uint32, r segment.Range) (count, amount int64, found bool) {
	if t := a.tab; t != nil && id+1 < uint32(len(t.off)) {
		if lo, hi, ok := t.bounds(a.tag, r); ok {
			count, amount, found = t.sum(t.off[id], t.off[id+1], lo, hi)
		}
	}
	for _, x := range a.over[id] {
		if x.day >= r.From && x.day <= r.To {
			found = true
			count += x.count
			amount += x.amount
		}
	}
	return count, amount, found
}

// sums is, for the customers with activity in a window, their count and amount there; ids are
// in increasing order.
type sums struct {
	ids    []uint32
	count  []int64
	amount []int64
	sink   uint32 // keeps table.scan's touches of memory from being optimised away
}

func (s *sums) release() {
	s.ids, s.count, s.amount = s.ids[:0], s.count[:0], s.amount[:0]
	sumsPool.Put(s)
}

var sumsPool = sync.Pool{New: func() any { return &sums{} }}

func getSums() *sums { return sumsPool.Get().(*sums) }

// sumsIn adds up counts and amounts over r for every customer among within who has entries
// there, visiting only the candidates: their table entries, then their overlay.
func (a *activity) sumsIn(r segment.Range, within *roaring.Bitmap) *sums {
	s := getSums()
	if r.From > r.To || within.IsEmpty() {
		return s
	}
	if t := a.tab; t != nil {
		if lo, hi, ok := t.bounds(a.tag, r); ok {
			t.scan(within, lo, hi, s)
		}
	}
	if a.overBM.IsEmpty() {
		return s
	}
	changed := roaring.And(a.overBM, within)
	if changed.IsEmpty() {
		return s
	}
	// Merge the overlay's customers into the (sorted) table results.
	extra := getSums()
	defer extra.release()
	it := changed.Iterator()
	for it.HasNext() {
		id := it.Next()
		var n, amt int64
		found := false
		for _, x := range a.over[id] {
			if x.day >= r.From && x.day <= r.To {
				found = true
				n += x.count
				amt += x.amount
			}
		}
		if found {
			extra.ids = append(extra.ids, id)
			extra.count = append(extra.count, n)
			extra.amount = append(extra.amount, amt)
		}
	}
	if len(extra.ids) == 0 {
		return s
	}
	merged := getSums()
	i, j := 0, 0
	for i < len(s.ids) || j < len(extra.ids) {
		switch {
		case j == len(extra.ids) || (i < len(s.ids) && s.ids[i] < extra.ids[j]):
			merged.ids, merged.count, merged.amount = append(merged.ids, s.ids[i]), append(merged.count, s.count[i]), append(merged.amount, s.amount[i])
			i++
		case i == len(s.ids) || extra.ids[j] < s.ids[i]:
			merged.ids, merged.count, merged.amount = append(merged.ids, extra.ids[j]), append(merged.count, extra.count[j]), append(merged.amount, extra.amount[j])
			j++
		default:
			merged.ids, merged.count, merged.amount = append(merged.ids, s.ids[i]), append(merged.count, s.count[i]+extra.count[j]), append(merged.amount, s.amount[i]+extra.amount[j])
			i++
			j++
		}
	}
	s.release()
	return merged
}

// Tables.

// table holds per-customer activity as of a rebuild, in compressed sparse rows: customer id's
// entries are ent[off[id]:off[id+1]], each tag<<24 | (day-base)<<8 | count, sorted, so that one
// activity's entries in a range of days are one contiguous run of values.
type table struct {
	base segment.Day
	off  []uint32
	ent  []uint32
	amt  []int32 // orders: net amount in minor units, aligned with ent
}

const (
	tableTags     = 256     // activities one table holds
	tableDays     = 1 << 16 // days from base a table entry can hold
	tableMaxCount = 255     // larger counts stay in the overlay
)

// bounds returns the range of entry values of tag within r, ok false when none can be.
func (t *table) bounds(tag uint32, r segment.Range) (lo, hi uint32, ok bool) {
	from, to := int64(r.From)-int64(t.base), int64(r.To)-int64(t.base)
	if from > to || to < 0 || from >= tableDays {
		return 0, 0, false
	}
	from, to = max(from, 0), min(to, tableDays-1)
	return tag<<24 | uint32(from)<<8, tag<<24 | uint32(to)<<8 | 0xff, true
}

// parallelScan is how many candidates make a table scan worth splitting between cores.
const parallelScan = 1 << 16

// scan appends to s every customer among within with entries between lo and hi, with their
// sums. Many candidates are split in two halves by id, scanned on two cores.
func (t *table) scan(within *roaring.Bitmap, lo, hi uint32, s *sums) {
	if within.GetCardinality() < parallelScan || runtime.GOMAXPROCS(0) < 2 {
		var ids [scanBatch]uint32
		it := within.ManyIterator()
		for k := it.NextMany(ids[:]); k > 0; k = it.NextMany(ids[:]) {
			t.scanBatch(ids[:k], lo, hi, s)
		}
		return
	}
	ids := within.ToArray()
	half := len(ids) / 2
	second := getSums()
	defer second.release()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := half; i < len(ids); i += scanBatch {
			t.scanBatch(ids[i:min(i+scanBatch, len(ids))], lo, hi, second)
		}
	}()
	for i := 0; i < half; i += scanBatch {
		t.scanBatch(ids[i:min(i+scanBatch, half)], lo, hi, s)
	}
	wg.Wait()
	s.ids, s.count, s.amount = append(s.ids, second.ids...), append(s.count, second.count...), append(s.amount, second.amount...)
	s.sink += second.sink
}

const scanBatch = 512

// scanBatch scans a batch of candidates in increasing order: their offsets first, then a
// touch of their first entries, then the sums — loads that do not depend on each other, so
// that the memory system serves many at once instead of one cache miss after another.
func (t *table) scanBatch(ids []uint32, lo, hi uint32, s *sums) {
	off, ent, amt := t.off, t.ent, t.amt
	n := uint32(len(off) - 1)
	var from, to [scanBatch]uint32
	k := len(ids)
	for k > 0 && ids[k-1] >= n {
		k--
	}
	ids = ids[:k]
	for j, id := range ids {
		from[j], to[j] = off[id], off[id+1]
	}
	var sink uint32
	for j := range k {
		if from[j] < to[j] {
			sink += ent[from[j]]
		}
	}
	if amt != nil {
		for j := range k {
			if from[j] < to[j] {
				sink += uint32(amt[from[j]])
			}
		}
	}
	s.sink += sink
	for j, id := range ids {
		if c, m, found := t.sum(from[j], to[j], lo, hi); found {
			s.ids, s.count, s.amount = append(s.ids, id), append(s.count, c), append(s.amount, m)
		}
	}
}

// sum adds up the counts (and amounts) of the entries from..to-1 that lie between lo and hi,
// and says whether there were any.
func (t *table) sum(from, to, lo, hi uint32) (count, amount int64, found bool) {
	for i := from; i < to; i++ {
		e := t.ent[i]
		if e < lo {
			continue
		}
		if e > hi {
			break
		}
		found = true
		count += int64(e & 0xff)
		if t.amt != nil {
			amount += int64(t.amt[i])
		}
	}
	return count, amount, found
}

// tableBuilder collects a table's rows during a rebuild.
type tableBuilder struct {
	base   segment.Day
	orders bool
	keys   []uint64 // id<<32 | entry
	amts   []int32
}

// add records a row, or returns false when it does not fit an entry (the caller keeps it in
// the overlay): tag or day out of range, a count outside 1..255, an amount beyond int32.
func (b *tableBuilder) add(id uint32, tag int, d segment.Day, count, amount int64) bool {
	rel := int64(d) - int64(b.base)
	if tag >= tableTags || rel < 0 || rel >= tableDays || count < 1 || count > tableMaxCount ||
		amount < math.MinInt32 || amount > math.MaxInt32 || len(b.keys) >= math.MaxUint32-1 {
		return false
	}
	b.keys = append(b.keys, uint64(id)<<32|uint64(tag)<<24|uint64(rel)<<8|uint64(count))
	if b.orders {
		b.amts = append(b.amts, int32(amount))
	}
	return true
}

// sort orders the rows by customer, tag and day. Sources usually deliver each customer's rows
// together and customers in order: then only each customer's few rows need sorting.
func (b *tableBuilder) sort() {
	keys, amts := b.keys, b.amts
	grouped := true
	for i := 1; i < len(keys); i++ {
		if keys[i]>>32 < keys[i-1]>>32 {
			grouped = false
			break
		}
	}
	if !grouped {
		sort.Sort(rowSorter{keys, amts})
		return
	}
	for s := 0; s < len(keys); {
		e := s + 1
		for e < len(keys) && keys[e]>>32 == keys[s]>>32 {
			e++
		}
		if amts == nil {
			slices.Sort(keys[s:e])
		} else {
			sort.Sort(rowSorter{keys[s:e], amts[s:e]})
		}
		s = e
	}
}

type rowSorter struct {
	keys []uint64
	amts []int32
}

func (r rowSorter) Len() int           { return len(r.keys) }
func (r rowSorter) Less(i, j int) bool { return r.keys[i] < r.keys[j] }
func (r rowSorter) Swap(i, j int) {
	r.keys[i], r.keys[j] = r.keys[j], r.keys[i]
	if r.amts != nil {
		r.amts[i], r.amts[j] = r.amts[j], r.amts[i]
	}
}

// build makes the table for customers below size (ids seen in rows raise it) and the
// activities' day bitmaps: acts[tag] receives tag's days.
func (b *tableBuilder) build(size uint32, acts []*activity) *table {
	b.sort()
	for _, k := range b.keys {
		size = max(size, uint32(k>>32)+1)
	}
	t := &table{base: b.base, off: make([]uint32, size+1), ent: make([]uint32, len(b.keys)), amt: b.amts}
	minDay, maxDay := uint32(tableDays), uint32(0)
	for i, k := range b.keys {
		t.off[k>>32+1]++
		e := uint32(k)
		t.ent[i] = e
		minDay, maxDay = min(minDay, e>>8&0xffff), max(maxDay, e>>8&0xffff)
	}
	for i := 1; i < len(t.off); i++ {
		t.off[i] += t.off[i-1]
	}
	b.keys, b.amts = nil, nil
	for tag, a := range acts {
		a.tab, a.tag = t, uint32(tag)
	}
	if len(t.ent) == 0 {
		return t
	}
	// Day bitmaps: bucket the customers by tag and day (a counting sort; customers come out in
	// increasing order within each bucket) and add each bucket at once.
	span := maxDay - minDay + 1
	bucket := func(e uint32) uint32 { return (e>>24)*span + (e>>8&0xffff - minDay) }
	start := make([]uint32, uint32(len(acts))*span+1)
	for _, e := range t.ent {
		start[bucket(e)+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	ids := make([]uint32, len(t.ent))
	pos := slices.Clone(start)
	for id := uint32(0); id < size; id++ {
		for _, e := range t.ent[t.off[id]:t.off[id+1]] {
			k := bucket(e)
			ids[pos[k]] = id
			pos[k]++
		}
	}
	for tag, a := range acts {
		for d := uint32(0); d < span; d++ {
			k := uint32(tag)*span + d
			if start[k] == start[k+1] {
				continue
			}
			bm := roaring.New()
			bm.AddMany(ids[start[k]:start[k+1]])
			bm.RunOptimize()
			a.days[b.base+segment.Day(minDay+d)] = bm
		}
	}
	return t
}
