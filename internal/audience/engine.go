// Package audience is the in-memory audience engine: it keeps every customer's tags,
// categorical values, dates, numbers, event and order activity as compressed bitmaps and
// columns, so that counting or listing a segment over millions of customers is bitmap algebra
// instead of a table scan. The store stays the source of truth: the engine is rebuilt from it on
// start and kept current from the changes each commit publishes (store.Subscribe).
package audience

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Source is what the engine reads: the store.
type Source interface {
	ScanCustomers(ctx context.Context, fn func(*customer.Customer) error) error
	CustomersByID(ctx context.Context, ids []int64) ([]*customer.Customer, error)
	ScanOptOuts(ctx context.Context, customers []int64, fn func(int64, string)) error
	ScanCustomerTags(ctx context.Context, customers []int64, fn func(int64, int64)) error
	TagGroups(ctx context.Context) (map[int64]int64, error)
	AttrDefs(ctx context.Context) ([]customer.AttrDef, error)
	ScanEventDays(ctx context.Context, offsetSeconds int, maxID int64, fn func(int64, string, int32, int64)) error
	MaxEventID(ctx context.Context) (int64, error)
	ScanOrderDays(ctx context.Context, offsetSeconds int, customers []int64, fn func(int64, int32, int64, int64)) error
	ScanHourCounts(ctx context.Context, orders bool, offsetSeconds int, sinceMS, untilMS int64, customers []int64, fn func(int64, int, int, int64)) error
}

// Fallback evaluates the conditions the engine does not index (events filtered by their
// properties) — in practice, as SQL on the store.
type Fallback interface {
	Members(ctx context.Context, tree *segment.Node, now time.Time) ([]int64, error)
}

// Engine is the audience engine. Its methods are safe for concurrent use.
type Engine struct {
	src      Source
	fallback Fallback
	loc      *time.Location
	now      func() time.Time
	log      *slog.Logger

	mu    sync.RWMutex
	state *state
	// pending holds changes that arrived during a rebuild, replayed after it; events up to
	// loadedEventID were read by the rebuild itself and are not replayed.
	pending       []*store.Changes
	rebuildng     bool
	loadedEventID int64
	ready         bool // a rebuild has completed

	// modelMu keeps model updates (read without mu, then applied under it) in commit order;
	// modelReloadShare overrides fullModelReloadShare (tests: -1 always reloads whole models).
	modelMu          sync.Mutex
	modelReloadShare float64

	// visitRatio tunes "did it in the window": its candidates are visited one by one when
	// they are fewer than 1/visitRatio of the active days in the window, else the days are
	// united. Tests set it to force either way.
	visitRatio uint64
}

// state is everything the engine knows, replaced whole by a rebuild.
type state struct {
	size    uint32 // highest customer id + 1
	alive   *roaring.Bitmap
	text    map[string]*textColumn // name, phone, email
	values  map[string]valueIndex  // gender, region, source, attrs.KEY (string attributes)
	owners  valueIndex             // owner id (decimal) → customers
	optouts valueIndex             // channel → customers
	lists   map[string]valueIndex  // attrs.KEY (list attributes): item → customers
	bools   map[string][2]*roaring.Bitmap
	nums    map[string]*numColumn
	dates   map[string]*dayColumn // birthday, created_at, last_seen_at, attrs.KEY (date attributes)
	attrT   map[string]customer.AttrType
	tags    map[int64]*roaring.Bitmap
	tagGrp  map[int64]int64
	events  map[string]*activity
	orders  *activity
	habits  map[string]valueIndex // active_hour, … → "20" → customers
	models  *models               // model outputs: RFM, stages, points
	unions  unionCache
	builtAt time.Time
}

func newState() *state {
	return &state{
		alive: roaring.New(), text: map[string]*textColumn{"name": {}, "phone": {}, "email": {}},
		values: map[string]valueIndex{"gender": {}, "region": {}, "source": {}}, owners: valueIndex{}, optouts: valueIndex{},
		lists: map[string]valueIndex{}, bools: map[string][2]*roaring.Bitmap{}, nums: map[string]*numColumn{},
		dates: map[string]*dayColumn{"birthday": {}, "created_at": {}, "last_seen_at": {}}, attrT: map[string]customer.AttrType{},
		tags: map[int64]*roaring.Bitmap{}, tagGrp: map[int64]int64{}, events: map[string]*activity{}, orders: newActivity(true),
		habits: map[string]valueIndex{"active_hour": {}, "active_weekday": {}, "buy_hour": {}, "buy_weekday": {}},
		models: newModels(),
	}
}

// Options configure an engine.
type Options struct {
	Location *time.Location   // workspace time zone; Asia/Shanghai by default
	Now      func() time.Time // clock; time.Now by default
	Fallback Fallback
	Log      *slog.Logger
}

// New makes an empty engine; call Rebuild to load it.
func New(src Source, opts Options) *Engine {
	e := &Engine{src: src, fallback: opts.Fallback, loc: opts.Location, now: opts.Now, log: opts.Log, state: newState(), visitRatio: 16}
	if e.loc == nil {
		e.loc = segment.Shanghai
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

func (e *Engine) offsetSeconds() int {
	_, off := e.now().In(e.loc).Zone()
	return off
}

// Progress receives rebuild progress: done of total customers.
type Progress interface {
	Add(n int64)
}

// Rebuild loads everything from the store into a fresh state and swaps it in. Changes
// committed during the rebuild are queued and replayed, so none is lost.
func (e *Engine) Rebuild(ctx context.Context, prog Progress) error {
	start := time.Now()
	e.mu.Lock()
	e.rebuildng = true
	e.pending = nil
	e.mu.Unlock()
	st, err := e.load(ctx, prog)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rebuildng = false
	if err != nil {
		e.pending = nil
		return err
	}
	e.state = st
	e.ready = true
	pending := e.pending
	e.pending = nil
	for _, c := range pending {
		replay := *c
		replay.Events = nil
		for _, ev := range c.Events {
			if ev.ID > e.loadedEventID {
				replay.Events = append(replay.Events, ev)
			}
		}
		if err := e.applyLocked(ctx, &replay); err != nil {
			e.log.Error("audience: replaying changes after rebuild", "err", err)
		}
	}
	e.log.Info("audience engine rebuilt", "customers", st.alive.GetCardinality(), "event_names", len(st.events), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

func (e *Engine) load(ctx context.Context, prog Progress) (*state, error) {
	st := newState()
	defs, err := e.src.AttrDefs(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		st.attrT[d.Key] = d.Type
	}
	if st.tagGrp, err = e.src.TagGroups(ctx); err != nil {
		return nil, err
	}
	err = e.src.ScanCustomers(ctx, func(c *customer.Customer) error {
		st.setCustomer(c, e.loc, true)
		if prog != nil {
			prog.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audience: load customers: %w", err)
	}
	if err := e.src.ScanOptOuts(ctx, nil, func(id int64, ch string) { st.optouts.add(ch, uint32(id)) }); err != nil {
		return nil, err
	}
	if err := e.src.ScanCustomerTags(ctx, nil, func(c, t int64) { st.tag(t).Add(uint32(c)) }); err != nil {
		return nil, err
	}
	off := e.offsetSeconds()
	maxID, err := e.src.MaxEventID(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.loadedEventID = maxID
	e.mu.Unlock()
	// Activity: rows go to the tables (and from them to the day bitmaps); the few that do not
	// fit an entry go to the overlay.
	base := segment.DayOf(e.now(), e.loc) - tableDays + tableDays/8
	evRows := &tableBuilder{base: base}
	var acts []*activity
	tags := map[string]int{}
	lastName, lastTag := "", -1
	err = e.src.ScanEventDays(ctx, off, maxID, func(c int64, name string, day int32, n int64) {
		if name != lastName || lastTag < 0 {
			t, ok := tags[name]
			if !ok {
				t = len(acts)
				tags[name] = t
				acts = append(acts, newActivity(false))
				st.events[name] = acts[t]
			}
			lastName, lastTag = name, t
		}
		if !evRows.add(uint32(c), lastTag, segment.Day(day), n, 0) {
			acts[lastTag].bump(uint32(c), segment.Day(day), n, 0)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("audience: load events: %w", err)
	}
	evRows.build(st.size, acts[:min(len(acts), tableTags)])
	ordRows := &tableBuilder{base: base, orders: true}
	err = e.src.ScanOrderDays(ctx, off, nil, func(c int64, day int32, n, net int64) {
		if !ordRows.add(uint32(c), 0, segment.Day(day), n, net) {
			st.orders.bump(uint32(c), segment.Day(day), n, net)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("audience: load orders: %w", err)
	}
	ordRows.build(st.size, []*activity{st.orders})
	if err := e.loadModels(ctx, st); err != nil {
		return nil, err
	}
	if err := e.loadHabits(ctx, st, nil); err != nil {
		return nil, err
	}
	st.clip()
	st.builtAt = e.now()
	return st, nil
}

// loadHabits finds each customer's usual hour and weekday: the one with the most events in the
// last 90 days (paid orders in the last 365 for buying), the earliest on a tie. With customers
// given it recomputes only theirs.
func (e *Engine) loadHabits(ctx context.Context, st *state, customers []int64) error {
	for _, id := range customers {
		for _, vi := range st.habits {
			vi.remove(uint32(id))
		}
	}
	today := segment.DayOf(e.now(), e.loc)
	for _, h := range []struct {
		orders     bool
		days       int
		hour, wday string
	}{{false, 90, "active_hour", "active_weekday"}, {true, 365, "buy_hour", "buy_weekday"}} {
		since := (today - segment.Day(h.days) + 1).Start(e.loc).UnixMilli()
		until := (today + 1).Start(e.loc).UnixMilli() - 1
		set := func(id uint32, hc *habitCounts) {
			st.habits[h.hour].add(strconv.Itoa(argmax(hc.hours[:], 0)), id)
			st.habits[h.wday].add(strconv.Itoa(argmax(hc.wdays[1:], 1)), id)
		}
		if customers == nil {
			// A whole rebuild: sources give each customer's rows together, so one customer's
			// counts at a time suffice. Should one come back later, start again with all kept.
			cur, grouped := uint32(0), true
			var hc habitCounts
			seen := roaring.New()
			err := e.src.ScanHourCounts(ctx, h.orders, e.offsetSeconds(), since, until, nil, func(c int64, hour, wd int, n int64) {
				id := uint32(c)
				if !grouped || id == cur {
					hc.hours[hour] += n
					hc.wdays[wd] += n
					return
				}
				if cur != 0 {
					set(cur, &hc)
					seen.Add(cur)
				}
				if seen.Contains(id) {
					grouped = false
					return
				}
				cur, hc = id, habitCounts{}
				hc.hours[hour] += n
				hc.wdays[wd] += n
			})
			if err != nil {
				return fmt.Errorf("audience: load habits: %w", err)
			}
			if grouped {
				if cur != 0 {
					set(cur, &hc)
				}
				continue
			}
			st.habits[h.hour], st.habits[h.wday] = valueIndex{}, valueIndex{}
		}
		counts := map[uint32]*habitCounts{}
		err := e.src.ScanHourCounts(ctx, h.orders, e.offsetSeconds(), since, until, customers, func(c int64, hour, wd int, n int64) {
			hc := counts[uint32(c)]
			if hc == nil {
				hc = &habitCounts{}
				counts[uint32(c)] = hc
			}
			hc.hours[hour] += n
			hc.wdays[wd] += n
		})
		if err != nil {
			return fmt.Errorf("audience: load habits: %w", err)
		}
		for id, hc := range counts {
			set(id, hc)
		}
	}
	return nil
}

// habitCounts is one customer's events (or orders) by hour of the day and ISO weekday.
type habitCounts struct {
	hours [24]int64
	wdays [8]int64
}

func argmax(xs []int64, base int) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best + base
}

// clip frees the spare capacity the columns grew while loading.
func (st *state) clip() {
	for _, c := range st.text {
		c.clip()
	}
	for _, c := range st.nums {
		c.vals = clipped(c.vals)
	}
	for _, c := range st.dates {
		*c = clipped(*c)
	}
}

func (st *state) tag(id int64) *roaring.Bitmap {
	b := st.tags[id]
	if b == nil {
		b = roaring.New()
		st.tags[id] = b
	}
	return b
}

func dayOfDate(s string) segment.Day {
	if d, ok := segment.ParseDay(s); ok {
		return d
	}
	return segment.NoDay
}

// setCustomer writes a customer's profile and attributes (not tags, opt-outs or activity).
// A new customer (fresh: during a rebuild, where each comes once) has no old values to clear.
func (st *state) setCustomer(c *customer.Customer, loc *time.Location, fresh bool) {
	id := uint32(c.ID)
	if id+1 > st.size {
		st.size = id + 1
	}
	if c.MergedInto != 0 {
		st.alive.Remove(id)
	} else {
		st.alive.Add(id)
	}
	st.text["name"].set(id, c.Name)
	st.text["phone"].set(id, c.Phone)
	st.text["email"].set(id, c.Email)
	for _, fv := range [...][2]string{{"gender", c.Gender}, {"region", c.Region}, {"source", c.Source}} {
		if !fresh {
			st.values[fv[0]].remove(id)
		}
		if fv[1] != "" {
			st.values[fv[0]].add(fv[1], id)
		}
	}
	if !fresh {
		st.owners.remove(id)
	}
	if c.OwnerID != 0 {
		st.owners.add(strconv.FormatInt(c.OwnerID, 10), id)
	}
	st.dates["birthday"].set(id, dayOfDate(c.Birthday))
	st.dates["created_at"].set(id, segment.DayOf(c.CreatedAt, loc))
	seen := segment.NoDay
	if !c.LastSeenAt.IsZero() {
		seen = segment.DayOf(c.LastSeenAt, loc)
	}
	st.dates["last_seen_at"].set(id, seen)
	// Attributes: clear the customer from every attribute index, then set what it has.
	if !fresh {
		st.clearAttrs(id)
	}
	for k, v := range c.Attrs {
		st.setAttr(k, v, id)
	}
}

func (st *state) clearAttrs(id uint32) {
	for _, vi := range st.lists {
		vi.remove(id)
	}
	for k, vi := range st.values {
		if len(k) > 6 && k[:6] == "attrs." {
			vi.remove(id)
		}
	}
	for _, b := range st.bools {
		b[0].Remove(id)
		b[1].Remove(id)
	}
	for _, col := range st.nums {
		col.unset(id)
	}
	for k, col := range st.dates {
		if len(k) > 6 && k[:6] == "attrs." && id < uint32(len(*col)) {
			(*col)[id] = segment.NoDay
		}
	}
}

func (st *state) setAttr(k string, v any, id uint32) {
	t, ok := st.attrT[k]
	if !ok {
		inferred, err := customer.InferAttrType(v)
		if err != nil {
			return
		}
		t = inferred
		st.attrT[k] = t
	}
	key := segment.AttrPrefix + k
	switch t {
	case customer.AttrString:
		s, ok := v.(string)
		if !ok || s == "" {
			return
		}
		vi := st.values[key]
		if vi == nil {
			vi = valueIndex{}
			st.values[key] = vi
		}
		vi.add(s, id)
	case customer.AttrNumber:
		f, ok := v.(float64)
		if !ok {
			return
		}
		col := st.nums[key]
		if col == nil {
			col = &numColumn{}
			st.nums[key] = col
		}
		col.set(id, f)
	case customer.AttrBool:
		b, ok := v.(bool)
		if !ok {
			return
		}
		pair, ok := st.bools[key]
		if !ok {
			pair = [2]*roaring.Bitmap{roaring.New(), roaring.New()}
			st.bools[key] = pair
		}
		if b {
			pair[1].Add(id)
		} else {
			pair[0].Add(id)
		}
	case customer.AttrDate:
		s, _ := v.(string)
		d := dayOfDate(s)
		if d == segment.NoDay {
			return
		}
		col := st.dates[key]
		if col == nil {
			col = &dayColumn{}
			st.dates[key] = col
		}
		col.set(id, d)
	case customer.AttrList:
		items, _ := v.([]any)
		vi := st.lists[key]
		if vi == nil {
			vi = valueIndex{}
			st.lists[key] = vi
		}
		for _, it := range items {
			if s, ok := it.(string); ok {
				vi.add(s, id)
			}
		}
	}
}

// Apply brings the engine up to date with one commit's changes. It is the store subscriber:
// register it with store.Subscribe(engine.Apply).
func (e *Engine) Apply(c *store.Changes) {
	if len(c.Models) > 0 {
		e.applyModels(context.Background(), c.Models)
		rest := *c
		rest.Models = nil
		if len(rest.Customers) == 0 && len(rest.Events) == 0 && len(rest.Merges) == 0 {
			return
		}
		c = &rest
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rebuildng {
		e.pending = append(e.pending, c)
	}
	if err := e.applyLocked(context.Background(), c); err != nil {
		e.log.Error("audience: applying changes; the next rebuild will repair it", "err", err)
	}
}

func (e *Engine) applyLocked(ctx context.Context, c *store.Changes) error {
	st := e.state
	for _, ev := range c.Events {
		id := uint32(ev.CustomerID)
		d := segment.DayOf(ev.At, e.loc)
		if cur := st.dates["last_seen_at"].get(id); !ev.System && (cur == segment.NoDay || d > cur) {
			st.dates["last_seen_at"].set(id, d)
		}
		if ev.Name == "" {
			continue
		}
		a := st.events[ev.Name]
		if a == nil {
			a = newActivity(false)
			st.events[ev.Name] = a
		}
		a.bump(id, d, 1, 0)
	}
	if len(c.Models) > 0 { // queued during a rebuild
		if err := e.replayModels(ctx, c.Models); err != nil {
			return err
		}
	}
	for _, m := range c.Merges {
		from, into := uint32(m.From), uint32(m.Into)
		for _, a := range st.events {
			a.move(from, into)
		}
		st.alive.Remove(from)
	}
	if len(c.Customers) == 0 && len(c.Merges) == 0 {
		return nil
	}
	ids := uniqueIDs(c.Customers, c.Merges)
	return e.refreshLocked(ctx, ids)
}

func uniqueIDs(ids []int64, merges []store.MergeChange) []int64 {
	seen := map[int64]bool{}
	var out []int64
	add := func(id int64) {
		if id != 0 && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range ids {
		add(id)
	}
	for _, m := range merges {
		add(m.From)
		add(m.Into)
	}
	return out
}

// refreshLocked reloads profile, attributes, opt-outs, tags and orders of some customers.
func (e *Engine) refreshLocked(ctx context.Context, ids []int64) error {
	st := e.state
	st.unions.reset()
	defs, err := e.src.AttrDefs(ctx)
	if err != nil {
		return err
	}
	for _, d := range defs {
		st.attrT[d.Key] = d.Type
	}
	cs, err := e.src.CustomersByID(ctx, ids)
	if err != nil {
		return err
	}
	for _, c := range cs {
		st.setCustomer(c, e.loc, false)
	}
	for _, id := range ids {
		u := uint32(id)
		st.optouts.remove(u)
		for _, b := range st.tags {
			b.Remove(u)
		}
	}
	if err := e.src.ScanOptOuts(ctx, ids, func(id int64, ch string) { st.optouts.add(ch, uint32(id)) }); err != nil {
		return err
	}
	tg, err := e.src.TagGroups(ctx)
	if err != nil {
		return err
	}
	st.tagGrp = tg
	if err := e.src.ScanCustomerTags(ctx, ids, func(c, t int64) { st.tag(t).Add(uint32(c)) }); err != nil {
		return err
	}
	// Orders: compare each customer's current per-day totals with the store's and bump the
	// difference.
	want := map[uint32]map[segment.Day][2]int64{}
	err = e.src.ScanOrderDays(ctx, e.offsetSeconds(), ids, func(c int64, day int32, n, net int64) {
		m := want[uint32(c)]
		if m == nil {
			m = map[segment.Day][2]int64{}
			want[uint32(c)] = m
		}
		m[segment.Day(day)] = [2]int64{n, net}
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		u := uint32(id)
		have := st.orders.perDay(u)
		for d, w := range want[u] {
			if h := have[d]; h != w {
				st.orders.bump(u, d, w[0]-h[0], w[1]-h[1])
			}
		}
		for d, h := range have {
			if _, ok := want[u][d]; !ok && h != [2]int64{} {
				st.orders.bump(u, d, -h[0], -h[1])
			}
		}
	}
	if err := e.refreshModels(ctx, st, ids); err != nil {
		return err
	}
	// Habits of these customers follow at once; those of customers who only sent events are
	// recomputed by RefreshHabits, which the server runs periodically.
	return e.loadHabits(ctx, st, ids)
}

// RefreshHabits recomputes every customer's usual hours and weekdays (they shift as days pass
// and events arrive). It reads the store without holding the engine's lock, then swaps.
func (e *Engine) RefreshHabits(ctx context.Context) error {
	tmp := newState()
	if err := e.loadHabits(ctx, tmp, nil); err != nil {
		return err
	}
	e.mu.Lock()
	e.state.habits = tmp.habits
	e.state.unions.reset()
	e.mu.Unlock()
	return nil
}

// Ready reports whether the engine has been built from the store at least once; before that
// its counts would be wrong, and callers should answer "warming up" (503).
func (e *Engine) Ready() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.ready
}

// Size reports how many customers (alive) the engine holds.
func (e *Engine) Size() uint64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.state.alive.GetCardinality()
}
