package audience

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Segments looks up saved segments' trees, for membership conditions.
type Segments func(id int64) (*segment.Node, bool)

// query is one evaluation: the state under a read lock, today, pre-computed fallbacks and a
// cache of referenced segments.
type query struct {
	e         *Engine
	st        *state
	today     segment.Day
	segs      Segments
	fallbacks map[*segment.EventCond]*roaring.Bitmap
	segCache  map[int64]*roaring.Bitmap
}

// Evaluate returns the members of a validated tree.
func (e *Engine) Evaluate(ctx context.Context, tree *segment.Node, segs Segments) (*roaring.Bitmap, error) {
	q, release, err := e.begin(ctx, tree, segs)
	if err != nil {
		return nil, err
	}
	defer release()
	return q.eval(tree), nil
}

// Count returns how many customers a validated tree selects.
func (e *Engine) Count(ctx context.Context, tree *segment.Node, segs Segments) (uint64, error) {
	b, err := e.Evaluate(ctx, tree, segs)
	if err != nil {
		return 0, err
	}
	return b.GetCardinality(), nil
}

// Members returns up to limit member ids greater than after, in id order.
func (e *Engine) Members(ctx context.Context, tree *segment.Node, segs Segments, after int64, limit int) ([]int64, error) {
	b, err := e.Evaluate(ctx, tree, segs)
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, limit)
	it := b.Iterator()
	if after >= 0 && after < math.MaxUint32 {
		it.AdvanceIfNeeded(uint32(after + 1))
	}
	for it.HasNext() && len(out) < limit {
		out = append(out, int64(it.Next()))
	}
	return out, nil
}

func (e *Engine) begin(ctx context.Context, tree *segment.Node, segs Segments) (*query, func(), error) {
	now := e.now()
	fallbacks := map[*segment.EventCond]*roaring.Bitmap{}
	var walkErr error
	var visit func(n *segment.Node, depth int)
	visit = func(n *segment.Node, depth int) {
		if depth > segment.MaxDepth*4 {
			return
		}
		segment.Walk(n, func(x *segment.Node) {
			if x.Event != nil && len(x.Event.Where) > 0 && walkErr == nil {
				if e.fallback == nil {
					walkErr = fmt.Errorf("audience: event property conditions need a fallback evaluator")
					return
				}
				ids, err := e.fallback.Members(ctx, &segment.Node{Event: x.Event}, now)
				if err != nil {
					walkErr = err
					return
				}
				b := roaring.New()
				for _, id := range ids {
					b.Add(uint32(id))
				}
				fallbacks[x.Event] = b
			}
			if x.Segment != 0 && segs != nil {
				if t, ok := segs(x.Segment); ok {
					visit(t, depth+1)
				}
			}
		})
	}
	visit(tree, 0)
	if walkErr != nil {
		return nil, nil, walkErr
	}
	e.mu.RLock()
	st := e.state
	q := &query{e: e, st: st, today: segment.DayOf(now, e.loc), segs: segs, fallbacks: fallbacks, segCache: map[int64]*roaring.Bitmap{}}
	return q, e.mu.RUnlock, nil
}

// eval returns the members of n.
func (q *query) eval(n *segment.Node) *roaring.Bitmap { return q.evalIn(n, q.st.alive) }

// cost ranks how expensive a node is to evaluate, so that AND evaluates cheap bitmap
// conditions first and hands the shrinking candidate set to the expensive ones, which then
// look only at those candidates.
func (q *query) cost(n *segment.Node) int {
	switch {
	case n.Tag != nil, n.Habit != nil:
		return 0
	case n.Field != "":
		if q.st.text[n.Field] != nil {
			return 3
		}
		if q.st.nums[n.Field] != nil || q.st.dates[n.Field] != nil || modelColumn(n.Field) {
			return 2
		}
		return 0
	case n.Segment != 0:
		return 1
	case n.Event != nil:
		if n.Event.Timing == "" && (n.Event.Count == nil || (n.Event.Count.Cmp == "gte" && n.Event.Count.Value == 1)) {
			return 1
		}
		return 3
	case n.Order != nil:
		return 3
	case n.Op != "":
		c := 0
		for _, ch := range n.Children {
			c = max(c, q.cost(ch))
		}
		return c
	}
	return 3
}

// orderBySample orders costly conditions (ANDed over within) so that the ones that rule out
// the most candidates for their effort go first, judging from a sample of within: each
// condition's cost per candidate over the share of the sample it rules out.
func (q *query) orderBySample(kids []*segment.Node, within *roaring.Bitmap) {
	const size = 128
	n := within.GetCardinality()
	if len(kids) < 2 || n < 8*size {
		return
	}
	sample := roaring.New()
	for i := uint64(0); i < size; i++ {
		if x, err := within.Select(uint32(i * n / size)); err == nil {
			sample.Add(x)
		}
	}
	m := float64(sample.GetCardinality())
	rank := map[*segment.Node]float64{}
	for _, k := range kids {
		kept := float64(q.evalIn(k, sample).GetCardinality()) / m
		rank[k] = q.effort(k, float64(n)) / max(1-kept, 0.02)
	}
	sort.SliceStable(kids, func(i, j int) bool { return rank[kids[i]] < rank[kids[j]] })
}

// effort estimates what a node costs over n candidates, in column look-ups: a look-up 1, a
// visit of a customer's activity entries 3, a text match 4; "did it in the window" unites days
// instead when that is cheaper, at a sixteenth of a visit per active day.
func (q *query) effort(x *segment.Node, n float64) float64 {
	switch {
	case x.Event != nil:
		if _, ok := q.fallbacks[x.Event]; ok {
			return 0
		}
		c := x.Event
		if a := q.st.events[c.Name]; a != nil && c.Timing == "" && (c.Count == nil || (c.Count.Cmp == "gte" && c.Count.Value == 1) || (c.Count.Cmp == "gt" && c.Count.Value == 0)) {
			_, size := a.baseIn(c.Window.Resolve(q.today))
			return min(3*n, 3*float64(size)/float64(max(q.e.visitRatio, 1)))
		}
		return 3 * n
	case x.Order != nil:
		return 3 * n
	case x.Field != "" && q.st.text[x.Field] != nil:
		return 4 * n
	case x.Op != "":
		w := 0.0
		for _, c := range x.Children {
			w += q.effort(c, n)
		}
		return w
	}
	return n
}

// evalIn returns the members of n among within (a subset of alive).
func (q *query) evalIn(n *segment.Node, within *roaring.Bitmap) *roaring.Bitmap {
	var b *roaring.Bitmap
	switch {
	case n.Op == "and":
		kids := append([]*segment.Node(nil), n.Children...)
		sort.SliceStable(kids, func(i, j int) bool { return q.cost(kids[i]) < q.cost(kids[j]) })
		cur := within
		for i, c := range kids {
			if i > 0 && q.cost(c) > 0 && q.cost(kids[i-1]) == 0 {
				q.orderBySample(kids[i:], cur)
				c = kids[i]
			}
			cur = q.evalIn(c, cur)
			if cur.IsEmpty() {
				break
			}
		}
		return cur
	case n.Op == "or":
		// Cheap children first; a costly child looks only at the candidates not yet in.
		kids := append([]*segment.Node(nil), n.Children...)
		sort.SliceStable(kids, func(i, j int) bool { return q.cost(kids[i]) < q.cost(kids[j]) })
		parts := make([]*roaring.Bitmap, 0, len(kids))
		rest, done := within, 0 // parts[:done] are taken out of rest
		for _, c := range kids {
			if q.cost(c) > 0 && done < len(parts) {
				rest = roaring.AndNot(rest, roaring.FastOr(parts[done:]...))
				done = len(parts)
				if rest.IsEmpty() {
					break
				}
			}
			parts = append(parts, q.evalIn(c, rest))
		}
		return roaring.FastOr(parts...)
	case n.Op == "not":
		return roaring.AndNot(within, q.evalIn(n.Children[0], within))
	case n.Field != "":
		b = q.field(n.Field, n.Cmp, n.Value, within)
	case n.Tag != nil:
		b = q.tag(n.Tag, within)
	case n.Event != nil:
		b = q.event(n.Event, within)
	case n.Order != nil:
		b = q.order(n.Order, within)
	case n.Habit != nil:
		vi := q.st.habits[n.Habit.Kind]
		var bs []*roaring.Bitmap
		for _, v := range n.Habit.In {
			bs = append(bs, vi.get(strconv.Itoa(v)))
		}
		b = q.st.unionIn(fmt.Sprint("habit", n.Habit.Kind, n.Habit.In), bs, within)
	case n.Segment != 0:
		c, ok := q.segCache[n.Segment]
		if !ok {
			c = roaring.New()
			if q.segs != nil {
				if t, ok := q.segs(n.Segment); ok {
					q.segCache[n.Segment] = roaring.New() // a cycle (refused by validation) yields nobody
					c = q.eval(t)
				}
			}
			q.segCache[n.Segment] = c
		}
		b = c
	default:
		b = roaring.New()
	}
	return roaring.And(b, within)
}

func (q *query) field(field, cmp string, value any, within *roaring.Bitmap) *roaring.Bitmap {
	if pos, ok := negated[cmp]; ok {
		return roaring.AndNot(within, q.field(field, pos, value, within))
	}
	if mdl, part, ok := segment.ModelField(field); ok {
		return q.modelField(mdl, part, cmp, value, within)
	}
	st := q.st
	typ := segment.ProfileFields[field]
	if strings.HasPrefix(field, segment.AttrPrefix) {
		typ = segment.AttrTypeToType(st.attrT[strings.TrimPrefix(field, segment.AttrPrefix)])
	}
	switch {
	case st.text[field] != nil:
		return st.text[field].match(within, stringMatch(cmp, value))
	case field == "owner":
		return q.staff(cmp, value, within)
	case field == "opted_out":
		return q.listMatch("opted_out", st.optouts, cmp, value, within)
	case typ == segment.List:
		return q.listMatch(field, st.lists[field], cmp, value, within)
	case typ == segment.String:
		vi := st.values[field]
		if cmp == "eq" {
			s, _ := value.(string)
			return vi.get(s)
		}
		return st.unionIn(fmt.Sprint("value", field, cmp, value), vi.matching(stringMatch(cmp, value)), within)
	case typ == segment.Bool:
		pair, ok := st.bools[field]
		if !ok {
			return roaring.New()
		}
		if cmp == "is_set" {
			return st.unionIn(field+" is_set", pair[:], within)
		}
		if v, _ := value.(bool); v {
			return pair[1]
		}
		return pair[0]
	case typ == segment.Number:
		col := st.nums[field]
		if col == nil {
			return roaring.New()
		}
		match := numMatch(cmp, value, 1)
		return scanColumn(within, col.vals, func(id uint32, x float32) bool { v, ok := col.value(id, x); return ok && match(v) })
	case typ == segment.Date || typ == segment.DateTime:
		col := st.dates[field]
		if col == nil {
			return roaring.New()
		}
		match := q.dateMatch(cmp, value)
		return scanColumn(within, *col, func(_ uint32, d segment.Day) bool { return d != segment.NoDay && match(d) })
	}
	return roaring.New()
}

// intersectIn returns the intersection of bs among within, narrowing within by one at a time.
func intersectIn(bs []*roaring.Bitmap, within *roaring.Bitmap) *roaring.Bitmap {
	out := within
	for _, b := range bs {
		out = roaring.And(out, b)
	}
	return out
}

// scanColumn returns the ids among within (below the column's length) whose value keep
// holds for. It reads a batch of values first, then tests them: loads that do not wait on
// each other, so that the memory system serves many at once.
func scanColumn[T any](within *roaring.Bitmap, col []T, keep func(id uint32, v T) bool) *roaring.Bitmap {
	const batch = 512
	var ids [batch]uint32
	var vals [batch]T
	out := roaring.New()
	buf := make([]uint32, 0, batch)
	it := within.ManyIterator()
	for {
		k := it.NextMany(ids[:])
		if k == 0 {
			break
		}
		for k > 0 && int(ids[k-1]) >= len(col) {
			k--
		}
		for j, id := range ids[:k] {
			vals[j] = col[id]
		}
		for j := range k {
			if keep(ids[j], vals[j]) {
				buf = append(buf, ids[j])
			}
		}
		if len(buf) > 0 {
			out.AddMany(buf)
			buf = buf[:0]
		}
	}
	return out
}

func (q *query) dateMatch(cmp string, value any) func(segment.Day) bool {
	switch cmp {
	case "is_set":
		return func(segment.Day) bool { return true }
	case "anniversary_in_next_days":
		f, _ := value.(float64)
		keys := segment.Anniversaries(q.today, int(f))
		return func(d segment.Day) bool { return keys[d.MonthDay()] }
	}
	r := segment.DateRange(cmp, value, q.today)
	return r.Contains
}

func (q *query) staff(cmp string, value any, within *roaring.Bitmap) *roaring.Bitmap {
	switch cmp {
	case "is_set":
		return q.st.unionIn("owner is_set", q.st.owners.matching(anyValue), within)
	case "eq":
		f, _ := value.(float64)
		return q.st.owners.get(strconv.FormatInt(int64(f), 10))
	case "in":
		var bs []*roaring.Bitmap
		for _, x := range asList(value) {
			f, _ := x.(float64)
			bs = append(bs, q.st.owners.get(strconv.FormatInt(int64(f), 10)))
		}
		return q.st.unionIn(fmt.Sprint("owner in", value), bs, within)
	}
	return roaring.New()
}

func (q *query) listMatch(field string, vi valueIndex, cmp string, value any, within *roaring.Bitmap) *roaring.Bitmap {
	if vi == nil {
		return roaring.New()
	}
	switch cmp {
	case "is_set":
		return q.st.unionIn(field+" is_set", vi.matching(anyValue), within)
	case "contains":
		s, _ := value.(string)
		return vi.get(s)
	case "contains_any", "contains_all":
		var bs []*roaring.Bitmap
		for _, x := range asList(value) {
			s, _ := x.(string)
			bs = append(bs, vi.get(s))
		}
		if cmp == "contains_any" {
			return q.st.unionIn(fmt.Sprint(field, cmp, value), bs, within)
		}
		return intersectIn(bs, within)
	}
	return roaring.New()
}

// numMatch compares numbers; scale multiplies the given values first (100 for amounts in
// minor units, rounded half away from zero).
func numMatch(cmp string, value any, scale float64) func(float64) bool {
	conv := func(x any) float64 {
		f, _ := x.(float64)
		if scale != 1 {
			return float64(event.MinorUnits(f, "CNY"))
		}
		return f
	}
	switch cmp {
	case "eq":
		v := conv(value)
		return func(x float64) bool { return x == v }
	case "lt":
		v := conv(value)
		return func(x float64) bool { return x < v }
	case "lte":
		v := conv(value)
		return func(x float64) bool { return x <= v }
	case "gt":
		v := conv(value)
		return func(x float64) bool { return x > v }
	case "gte":
		v := conv(value)
		return func(x float64) bool { return x >= v }
	case "between":
		l := asList(value)
		if len(l) != 2 {
			break
		}
		lo, hi := conv(l[0]), conv(l[1])
		return func(x float64) bool { return x >= lo && x <= hi }
	case "in":
		set := map[float64]bool{}
		for _, x := range asList(value) {
			set[conv(x)] = true
		}
		return func(x float64) bool { return set[x] }
	case "is_set":
		return func(float64) bool { return true }
	}
	return func(float64) bool { return false }
}

func countMatch(c *segment.Compare) func(int64) bool {
	if c == nil {
		return func(n int64) bool { return n >= 1 }
	}
	v := int64(c.Value)
	switch c.Cmp {
	case "eq":
		return func(n int64) bool { return n == v }
	case "ne":
		return func(n int64) bool { return n != v }
	case "gt":
		return func(n int64) bool { return n > v }
	case "gte":
		return func(n int64) bool { return n >= v }
	case "lt":
		return func(n int64) bool { return n < v }
	case "lte":
		return func(n int64) bool { return n <= v }
	}
	return func(int64) bool { return false }
}

func (q *query) tag(c *segment.TagCond, within *roaring.Bitmap) *roaring.Bitmap {
	ids := c.IDs
	if c.Group != 0 {
		ids = nil
		for t, g := range q.st.tagGrp {
			if g == c.Group {
				ids = append(ids, t)
			}
		}
		slices.Sort(ids)
	}
	bs := make([]*roaring.Bitmap, 0, len(ids))
	for _, id := range ids {
		if b := q.st.tags[id]; b != nil {
			bs = append(bs, b)
		} else {
			bs = append(bs, roaring.New())
		}
	}
	switch c.Match {
	case "all":
		if len(bs) == 0 {
			return roaring.New()
		}
		return intersectIn(bs, within)
	case "none":
		return roaring.AndNot(within, q.st.unionIn(fmt.Sprint("tags", ids), bs, within))
	}
	return q.st.unionIn(fmt.Sprint("tags", ids), bs, within)
}

func (q *query) event(c *segment.EventCond, within *roaring.Bitmap) *roaring.Bitmap {
	if b, ok := q.fallbacks[c]; ok {
		return b.Clone()
	}
	a := q.st.events[c.Name]
	if a == nil {
		a = newActivity(false)
	}
	if c.Timing != "" {
		return q.timing(a, c.Timing, c.Cmp, c.Value, within)
	}
	r := c.Window.Resolve(q.today)
	match := countMatch(c.Count)
	if c.Count == nil || (c.Count.Cmp == "gte" && c.Count.Value == 1) || (c.Count.Cmp == "gt" && c.Count.Value == 0) {
		return a.any(r, within, q.e.visitRatio)
	}
	s := a.sumsIn(r, within)
	defer s.release()
	return s.pick(within, match(0), func(i int) bool { return match(s.count[i]) })
}

// pick returns the customers among within that keep: those with sums for which keep(i)
// holds, and those without when zero is kept.
func (s *sums) pick(within *roaring.Bitmap, zero bool, keep func(i int) bool) *roaring.Bitmap {
	buf := make([]uint32, 0, 1024)
	out := roaring.New()
	for i, id := range s.ids {
		if keep(i) {
			buf = append(buf, id)
			if len(buf) == cap(buf) {
				out.AddMany(buf)
				buf = buf[:0]
			}
		}
	}
	out.AddMany(buf)
	if zero {
		some := roaring.New()
		some.AddMany(s.ids)
		out.Or(roaring.AndNot(within, some))
	}
	return out
}

// timing selects customers among within whose first or last active day satisfies a date
// comparison.
func (q *query) timing(a *activity, which, cmp string, value any, within *roaring.Bitmap) *roaring.Bitmap {
	all := segment.Range{From: segment.MinDay, To: segment.MaxDay}
	switch cmp {
	case "is_set":
		return a.any(all, within, q.e.visitRatio)
	case "is_not_set":
		return roaring.AndNot(within, a.any(all, within, q.e.visitRatio))
	}
	r := segment.DateRange(cmp, value, q.today)
	if r.From > r.To {
		return roaring.New()
	}
	in := a.any(r, within, q.e.visitRatio)
	if which == "first" {
		if r.From == segment.MinDay {
			return in
		}
		return roaring.AndNot(in, a.any(segment.Range{From: segment.MinDay, To: r.From - 1}, in, q.e.visitRatio))
	}
	if r.To == segment.MaxDay {
		return in
	}
	return roaring.AndNot(in, a.any(segment.Range{From: r.To + 1, To: segment.MaxDay}, in, q.e.visitRatio))
}

func (q *query) order(c *segment.OrderCond, within *roaring.Bitmap) *roaring.Bitmap {
	a := q.st.orders
	switch c.Metric {
	case "first_at":
		return q.timing(a, "first", c.Cmp, c.Value, within)
	case "last_at":
		return q.timing(a, "last", c.Cmp, c.Value, within)
	}
	if pos, ok := negated[c.Cmp]; ok {
		return roaring.AndNot(within, q.order(&segment.OrderCond{Metric: c.Metric, Window: c.Window, Cmp: pos, Value: c.Value}, within))
	}
	s := a.sumsIn(c.Window.Resolve(q.today), within)
	defer s.release()
	switch c.Metric {
	case "count":
		match := numMatch(c.Cmp, c.Value, 1)
		return s.pick(within, match(0), func(i int) bool { return match(float64(s.count[i])) })
	case "total":
		match := numMatch(c.Cmp, c.Value, 100)
		return s.pick(within, match(0), func(i int) bool { return match(float64(s.amount[i])) })
	case "avg":
		return s.pick(within, false, func(i int) bool { return s.count[i] > 0 && avgMatch(c.Cmp, c.Value, s.amount[i], s.count[i]) })
	}
	return roaring.New()
}

// avgMatch compares total/n with a value in major units exactly, without dividing.
func avgMatch(cmp string, value any, total, n int64) bool {
	minor := func(x any) int64 { f, _ := x.(float64); return event.MinorUnits(f, "CNY") }
	switch cmp {
	case "is_set":
		return true
	case "eq":
		return total == minor(value)*n
	case "lt":
		return total < minor(value)*n
	case "lte":
		return total <= minor(value)*n
	case "gt":
		return total > minor(value)*n
	case "gte":
		return total >= minor(value)*n
	case "between":
		l := asList(value)
		return len(l) == 2 && total >= minor(l[0])*n && total <= minor(l[1])*n
	case "in":
		for _, x := range asList(value) {
			if total == minor(x)*n {
				return true
			}
		}
	}
	return false
}
