package audience

import (
	"math"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// valueIndex keeps one bitmap per distinct value of a low-cardinality field (gender, region,
// source, string attributes, list items, owners, opt-out channels).
type valueIndex map[string]*roaring.Bitmap

func (vi valueIndex) add(v string, id uint32) {
	b := vi[v]
	if b == nil {
		b = roaring.New()
		vi[v] = b
	}
	b.Add(id)
}

// remove takes id out of every value (a customer's old value is not remembered: the number of
// distinct values is small).
func (vi valueIndex) remove(id uint32) {
	for v, b := range vi {
		if b.CheckedRemove(id) && b.IsEmpty() {
			delete(vi, v)
		}
	}
}

func (vi valueIndex) get(v string) *roaring.Bitmap {
	if b := vi[v]; b != nil {
		return b
	}
	return roaring.New()
}

// matching returns the bitmaps of the values for which keep is true.
func (vi valueIndex) matching(keep func(v string) bool) []*roaring.Bitmap {
	var bs []*roaring.Bitmap
	for v, b := range vi {
		if keep(v) {
			bs = append(bs, b)
		}
	}
	return bs
}

func anyValue(string) bool { return true }

// unionCache keeps the unions of index bitmaps that conditions asked for over many candidates
// (owner is set, a tag group, five regions), so that the next query intersects one bitmap
// instead of uniting many. Changes to customers' values, tags or habits drop it.
type unionCache struct {
	mu sync.Mutex
	m  map[string]*roaring.Bitmap
}

// unionCacheSize bounds the cache; when full it starts afresh.
const unionCacheSize = 64

func (c *unionCache) get(key string, bs []*roaring.Bitmap) *roaring.Bitmap {
	c.mu.Lock()
	b, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return b
	}
	b = roaring.FastOr(bs...)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= unionCacheSize {
		c.m = map[string]*roaring.Bitmap{}
	}
	c.m[key] = b
	c.mu.Unlock()
	return b
}

func (c *unionCache) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// unionIn returns the union of bs among within: the union over all customers, computed once
// and cached under key, intersected with the candidates.
func (st *state) unionIn(key string, bs []*roaring.Bitmap, within *roaring.Bitmap) *roaring.Bitmap {
	if len(bs) < 2 {
		return roaring.And(roaring.FastOr(bs...), within)
	}
	return roaring.And(st.unions.get(key, bs), within)
}

// textColumn keeps one string per customer in an arena, for high-cardinality text (name,
// phone, email) that conditions scan rarely. A changed value is appended; the old bytes stay
// until the next rebuild.
type textColumn struct {
	arena []byte
	off   []uint32
	n     []uint16
}

func (c *textColumn) set(id uint32, s string) {
	for uint32(len(c.off)) <= id {
		c.off = append(c.off, 0)
		c.n = append(c.n, 0)
	}
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	if s == "" {
		c.off[id], c.n[id] = 0, 0
		return
	}
	c.off[id], c.n[id] = uint32(len(c.arena)), uint16(len(s))
	c.arena = append(c.arena, s...)
}

// clip reallocates the column at its exact size, freeing what growing it left spare.
func (c *textColumn) clip() {
	c.arena, c.off, c.n = clipped(c.arena), clipped(c.off), clipped(c.n)
}

// clipped returns xs in an array of its own length.
func clipped[T any](xs []T) []T {
	if cap(xs) == len(xs) {
		return xs
	}
	return append(make([]T, 0, len(xs)), xs...)
}

func (c *textColumn) get(id uint32) string {
	if id >= uint32(len(c.off)) || c.n[id] == 0 {
		return ""
	}
	return string(c.arena[c.off[id] : c.off[id]+uint32(c.n[id])])
}

// match returns the customers among alive whose value satisfies pred.
func (c *textColumn) match(alive *roaring.Bitmap, pred func(string) bool) *roaring.Bitmap {
	out := roaring.New()
	it := alive.Iterator()
	for it.HasNext() {
		id := it.Next()
		if pred(c.get(id)) {
			out.Add(id)
		}
	}
	return out
}

// numColumn is a dense column of numbers. A number that a float32 holds exactly (counts,
// ages, points, money in whole yuan) takes 4 bytes; any other is marked wide and kept in a map.
type numColumn struct {
	vals []float32 // unsetNum where unset
	wide map[uint32]float64
}

// Two NaNs mark an unset value and a wide one.
var (
	unsetNum = math.Float32frombits(0x7fc00000)
	wideNum  = math.Float32frombits(0x7fc00001)
)

func (c *numColumn) set(id uint32, v float64) {
	for uint32(len(c.vals)) <= id {
		c.vals = append(c.vals, unsetNum)
	}
	c.unset(id)
	if f := float32(v); float64(f) == v {
		c.vals[id] = f
		return
	}
	if c.wide == nil {
		c.wide = map[uint32]float64{}
	}
	c.vals[id] = wideNum
	c.wide[id] = v
}

func (c *numColumn) unset(id uint32) {
	if id < uint32(len(c.vals)) {
		c.vals[id] = unsetNum
		delete(c.wide, id)
	}
}

// value returns customer id's number given its entry x, and whether it is set.
func (c *numColumn) value(id uint32, x float32) (float64, bool) {
	if x == x { // not NaN
		return float64(x), true
	}
	if math.Float32bits(x) == math.Float32bits(wideNum) {
		return c.wide[id], true
	}
	return 0, false
}

// dayColumn is a dense column of days, segment.NoDay where unset.
type dayColumn []segment.Day

func (c *dayColumn) set(id uint32, d segment.Day) {
	for uint32(len(*c)) <= id {
		*c = append(*c, segment.NoDay)
	}
	(*c)[id] = d
}

func (c dayColumn) get(id uint32) segment.Day {
	if id >= uint32(len(c)) {
		return segment.NoDay
	}
	return c[id]
}

// stringMatch implements the text operators for one value.
func stringMatch(cmp string, value any) func(string) bool {
	switch cmp {
	case "eq":
		v, _ := value.(string)
		return func(s string) bool { return s != "" && s == v }
	case "in":
		set := map[string]bool{}
		for _, x := range asList(value) {
			if s, ok := x.(string); ok {
				set[s] = true
			}
		}
		return func(s string) bool { return s != "" && set[s] }
	case "contains":
		v, _ := value.(string)
		return func(s string) bool { return s != "" && strings.Contains(s, v) }
	case "starts_with":
		v, _ := value.(string)
		return func(s string) bool { return s != "" && strings.HasPrefix(s, v) }
	case "is_set":
		return func(s string) bool { return s != "" }
	}
	return func(string) bool { return false }
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// negated maps a complement operator to the operator it complements.
var negated = map[string]string{"ne": "eq", "not_in": "in", "not_contains": "contains", "is_not_set": "is_set"}
