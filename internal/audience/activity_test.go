package audience

import (
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// TestTableSumsMatchRows holds the table (scanned in one piece and split between cores) and
// its day bitmaps to the rows it was built from.
func TestTableSumsMatchRows(t *testing.T) {
	const customers, today = 300_000, segment.Day(20000)
	rng := rand.New(rand.NewPCG(1, 2))
	b := &tableBuilder{base: today - tableDays + tableDays/8, orders: true}
	type key struct {
		id  uint32
		day segment.Day
	}
	want := map[key][2]int64{}
	for id := uint32(1); id < customers; id++ {
		for range rng.IntN(4) {
			k := key{id, today - segment.Day(rng.IntN(400))}
			if _, dup := want[k]; dup {
				continue
			}
			n, amt := int64(1+rng.IntN(3)), int64(rng.IntN(100000)-1000)
			want[k] = [2]int64{n, amt}
			if !b.add(id, 0, k.day, n, amt) {
				t.Fatalf("row %v refused", k)
			}
		}
	}
	a := newActivity(true)
	b.build(customers, []*activity{a})
	within := roaring.New()
	for id := uint32(0); id < customers+10; id += 1 + uint32(rng.IntN(3)) {
		within.Add(id)
	}
	if within.GetCardinality() < parallelScan {
		t.Fatal("too few candidates to split the scan")
	}
	r := segment.Range{From: today - 90, To: today - 3}
	expect := map[uint32][2]int64{}
	for k, v := range want {
		if within.Contains(k.id) && r.Contains(k.day) {
			e := expect[k.id]
			expect[k.id] = [2]int64{e[0] + v[0], e[1] + v[1]}
		}
	}
	s := a.sumsIn(r, within)
	defer s.release()
	if len(s.ids) != len(expect) {
		t.Fatalf("%d customers with sums, want %d", len(s.ids), len(expect))
	}
	for i, id := range s.ids {
		if i > 0 && s.ids[i-1] >= id {
			t.Fatalf("ids out of order at %d", i)
		}
		if got := [2]int64{s.count[i], s.amount[i]}; got != expect[id] {
			t.Fatalf("customer %d: %v, want %v", id, got, expect[id])
		}
	}
	active := a.any(r, within, 1<<20) // uniting the day bitmaps
	if active.GetCardinality() != uint64(len(expect)) {
		t.Fatalf("day bitmaps: %d active, want %d", active.GetCardinality(), len(expect))
	}
}
