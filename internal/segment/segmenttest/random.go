package segmenttest

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Value pools: random data and random trees draw from the same small pools, so that equality
// conditions hit, and they hold SQL meta-characters, case variants and prefixes of each other.
var (
	Strings  = []string{"张三", "李四", "Eve", "eve", "O'Brien; --", "100%_x", "?", "$1", "上海", "上", "抖音", "抖音直播", "gold", "Gold", ""}
	Numbers  = []float64{-3, 0, 0.5, 1, 2, 3, 33.33, 50.5, 66.67, 70, 100, 140, 5000, 8000}
	Channels = []string{"sms", "email", "wecom_private"}
	Events   = []string{"view", "purchase", "ping"}
	Props    = []string{"channel", "amount", "vip", "a.b"}
)

// Attrs are the custom attributes of random data sets.
var Attrs = []customer.AttrDef{
	{Key: "level", Type: customer.AttrString}, {Key: "income", Type: customer.AttrNumber},
	{Key: "vip", Type: customer.AttrBool}, {Key: "joined", Type: customer.AttrDate},
	{Key: "hobbies", Type: customer.AttrList}, {Key: "a.b", Type: customer.AttrString},
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// randomInstant is a time within days before (or a few days after) now, often exactly at a
// local midnight or the last millisecond of a day, where windows are easiest to get wrong.
func randomInstant(rng *rand.Rand, now time.Time, days int, loc *time.Location) time.Time {
	day := segment.DayOf(now, loc) - segment.Day(rng.IntN(days)) + segment.Day(rng.IntN(3))
	start := day.Start(loc)
	switch rng.IntN(4) {
	case 0:
		return start
	case 1:
		return (day + 1).Start(loc).Add(-time.Millisecond)
	}
	return start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
}

func randomDate(rng *rand.Rand, now time.Time) string {
	if rng.IntN(8) == 0 {
		return fmt.Sprintf("%04d-02-29", 1980+4*rng.IntN(6))
	}
	d := segment.DayOf(now, segment.Shanghai) + segment.Day(rng.IntN(3*365)-2*365)
	return d.Date().Format("2006-01-02")
}

// Random builds a data set of n customers around now (days of Asia/Shanghai): profiles and
// attributes from the pools, some unset, some merged away; tags; events and orders over the
// last 400 days with refunds and zero amounts; and a few saved segments, one referring to
// another.
func Random(rng *rand.Rand, n int, now time.Time) *Data {
	loc := segment.Shanghai
	d := &Data{Staff: 3, AttrDefs: Attrs, CustomerTags: map[int64][]int64{}}
	d.TagGroups = []TagGroup{{ID: 1, Name: "g1"}, {ID: 2, Name: "g2"}, {ID: 3, Name: "g3"}}
	for i := int64(1); i <= 6; i++ {
		d.Tags = append(d.Tags, Tag{ID: i, Group: (i-1)/2 + 1, Name: fmt.Sprintf("t%d", i)})
	}
	maybe := func(s string) string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return s
	}
	for id := int64(1); id <= int64(n); id++ {
		c := &customer.Customer{
			ID: id, Name: maybe(pick(rng, Strings)), Gender: maybe(pick(rng, []string{"male", "female"})),
			Region: maybe(pick(rng, Strings)), Phone: maybe(fmt.Sprint(13800000000 + rng.IntN(5))), Email: maybe(pick(rng, Strings)),
			Source: maybe(pick(rng, Strings)), OwnerID: int64(rng.IntN(4)), Attrs: map[string]any{},
			CreatedAt: randomInstant(rng, now, 700, loc),
		}
		if rng.IntN(3) > 0 {
			c.Birthday = randomDate(rng, now)
		}
		if rng.IntN(3) > 0 {
			c.LastSeenAt = randomInstant(rng, now, 120, loc)
		}
		if rng.IntN(2) == 0 {
			c.Attrs["level"] = pick(rng, Strings)
		}
		if rng.IntN(2) == 0 {
			c.Attrs["income"] = pick(rng, Numbers)
		}
		if rng.IntN(2) == 0 {
			c.Attrs["vip"] = rng.IntN(2) == 0
		}
		if rng.IntN(2) == 0 {
			c.Attrs["joined"] = randomDate(rng, now)
		}
		if rng.IntN(2) == 0 {
			hobbies := []string{}
			for range rng.IntN(3) {
				hobbies = append(hobbies, pick(rng, Strings[:6]))
			}
			c.Attrs["hobbies"] = hobbies
		}
		if rng.IntN(4) == 0 {
			c.Attrs["a.b"] = pick(rng, Strings)
		}
		for _, ch := range Channels {
			if rng.IntN(4) == 0 {
				c.OptOuts = append(c.OptOuts, ch)
			}
		}
		if id > 1 && rng.IntN(10) == 0 {
			c.MergedInto = 1 + rng.Int64N(id-1)
		}
		for _, t := range d.Tags {
			if rng.IntN(4) == 0 {
				d.CustomerTags[id] = append(d.CustomerTags[id], t.ID)
			}
		}
		d.Customers = append(d.Customers, c)
		for range rng.IntN(8) {
			props := map[string]any{}
			if rng.IntN(3) > 0 {
				props["channel"] = pick(rng, Strings)
			}
			switch rng.IntN(4) {
			case 0:
				props["amount"] = pick(rng, Numbers)
			case 1:
				props["amount"] = fmt.Sprint(pick(rng, Numbers))
			case 2:
				props["amount"] = nil
			}
			if rng.IntN(3) == 0 {
				props["vip"] = rng.IntN(2) == 0
			}
			if rng.IntN(5) == 0 {
				props["a.b"] = pick(rng, Numbers)
			}
			d.Events = append(d.Events, &event.Event{MessageID: fmt.Sprintf("e%d", len(d.Events)+1), CustomerID: id, Type: "track",
				Name: pick(rng, Events), Properties: props, Timestamp: randomInstant(rng, now, 400, loc)})
		}
		for range rng.IntN(4) {
			o := &event.Order{OrderID: fmt.Sprintf("o%d", len(d.Orders)+1), CustomerID: id, Status: event.Paid, Currency: "CNY",
				AmountMinor: int64(rng.IntN(4)) * int64(pick(rng, []int{0, 3333, 5000, 10000})), PaidAt: randomInstant(rng, now, 400, loc)}
			switch rng.IntN(5) {
			case 0:
				o.Status, o.RefundedMinor = event.Refunded, o.AmountMinor
			case 1:
				if o.AmountMinor > 1 {
					o.Status, o.RefundedMinor = event.PartiallyRefunded, o.AmountMinor/2
				}
			}
			d.Orders = append(d.Orders, o)
		}
	}
	randomModels(rng, d, now)
	in := d.Info(now)
	for id := int64(1); id <= 3; id++ {
		tree := RandomTree(rng, in, 2)
		if id == 3 {
			tree = &segment.Node{Op: "or", Children: []*segment.Node{{Segment: 1}, tree}}
		}
		d.Segments = append(d.Segments, Segment{ID: id, Name: fmt.Sprintf("s%d", id), Tree: tree})
		in.Segments = append(in.Segments, id)
	}
	return d
}

// Info is what random trees may name.
type Info struct {
	Now      time.Time
	Attrs    map[string]customer.AttrType
	Staff    int
	Tags     []int64
	Groups   []int64
	Segments []int64
}

// Info describes the data set for RandomTree.
func (d *Data) Info(now time.Time) Info {
	in := Info{Now: now, Attrs: map[string]customer.AttrType{}, Staff: d.Staff}
	for _, a := range d.AttrDefs {
		in.Attrs[a.Key] = a.Type
	}
	for _, t := range d.Tags {
		in.Tags = append(in.Tags, t.ID)
	}
	for _, g := range d.TagGroups {
		in.Groups = append(in.Groups, g.ID)
	}
	for _, s := range d.Segments {
		in.Segments = append(in.Segments, s.ID)
	}
	return in
}

// RandomTree returns a valid tree over in: groups down to depth, and leaves of every kind,
// every field and every operator, with values from the pools.
func RandomTree(rng *rand.Rand, in Info, depth int) *segment.Node {
	if depth > 0 && rng.IntN(3) == 0 {
		op := pick(rng, []string{"and", "or", "not"})
		n := &segment.Node{Op: op}
		kids := 1
		if op != "not" {
			kids = 1 + rng.IntN(3)
		}
		for range kids {
			n.Children = append(n.Children, RandomTree(rng, in, depth-1))
		}
		return n
	}
	switch rng.IntN(8) {
	case 0, 1, 2:
		return randomField(rng, in)
	case 3:
		if len(in.Tags) > 0 {
			return &segment.Node{Tag: randomTag(rng, in)}
		}
	case 4:
		return &segment.Node{Event: randomEvent(rng, in)}
	case 5:
		return &segment.Node{Order: randomOrder(rng, in)}
	case 6:
		kind := pick(rng, []string{"active_hour", "buy_hour", "active_weekday", "buy_weekday"})
		r := segment.HabitKinds[kind]
		h := &segment.HabitCond{Kind: kind}
		for range 1 + rng.IntN(3) {
			h.In = append(h.In, r[0]+rng.IntN(r[1]-r[0]+1))
		}
		return &segment.Node{Habit: h}
	case 7:
		if len(in.Segments) > 0 {
			return &segment.Node{Segment: pick(rng, in.Segments)}
		}
	}
	return randomField(rng, in)
}

func randomField(rng *rand.Rand, in Info) *segment.Node {
	fields := make([]string, 0, len(segment.ProfileFields)+len(in.Attrs))
	for f := range segment.ProfileFields {
		fields = append(fields, f)
	}
	for k := range in.Attrs {
		fields = append(fields, segment.AttrPrefix+k)
	}
	for f := range segment.ModelFields {
		fields = append(fields, f)
	}
	sort.Strings(fields) // map order is random: keep a seed's trees the same
	f := pick(rng, fields)
	t, _ := segment.FieldType(schemaOf(in), f)
	cmp := pick(rng, segment.Operators[t])
	if _, _, ok := segment.ModelField(f); ok {
		return &segment.Node{Field: f, Cmp: cmp, Value: modelFieldValue(rng, f, t, cmp, in)}
	}
	return &segment.Node{Field: f, Cmp: cmp, Value: randomValue(rng, in, t, cmp)}
}

// randomValue returns a valid value for cmp on a field of type t.
func randomValue(rng *rand.Rand, in Info, t segment.Type, cmp string) any {
	scalar := func() any {
		switch t {
		case segment.Number:
			return pick(rng, Numbers)
		case segment.Bool:
			return rng.IntN(2) == 0
		case segment.StaffRef:
			return float64(1 + rng.IntN(max(in.Staff, 1)))
		case segment.Date, segment.DateTime:
			return randomDate(rng, in.Now)
		case segment.List:
			if rng.IntN(2) == 0 {
				return pick(rng, Channels)
			}
		}
		return pick(rng, Strings)
	}
	switch cmp {
	case "is_set", "is_not_set":
		return nil
	case "in", "not_in", "contains_any", "contains_all":
		var l []any
		for range 1 + rng.IntN(3) {
			l = append(l, scalar())
		}
		return l
	case "between":
		a, b := scalar(), scalar()
		if x, ok := a.(float64); ok && x > b.(float64) {
			a, b = b, a
		}
		if x, ok := a.(string); ok && x > b.(string) {
			a, b = b, a
		}
		return []any{a, b}
	case "in_last_days", "more_than_days_ago", "in_next_days", "anniversary_in_next_days":
		return float64(pick(rng, []int{1, 2, 7, 30, 90, 365}))
	case "contains", "not_contains", "starts_with":
		if t == segment.List {
			return scalar()
		}
		return pick(rng, Strings)
	}
	return scalar()
}

func randomWindow(rng *rand.Rand, in Info) *segment.Window {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return &segment.Window{LastDays: pick(rng, []int{1, 7, 30, 90})}
	}
	a, b := randomDate(rng, in.Now), randomDate(rng, in.Now)
	if b < a {
		a, b = b, a
	}
	w := &segment.Window{From: a, To: b}
	if rng.IntN(3) == 0 {
		w.From = ""
	} else if rng.IntN(3) == 0 {
		w.To = ""
	}
	return w
}

func randomTag(rng *rand.Rand, in Info) *segment.TagCond {
	t := &segment.TagCond{Match: pick(rng, []string{"any", "all", "none"})}
	if t.Match != "all" && len(in.Groups) > 0 && rng.IntN(3) == 0 {
		t.Group = pick(rng, in.Groups)
		return t
	}
	for range 1 + rng.IntN(3) {
		t.IDs = append(t.IDs, pick(rng, in.Tags))
	}
	return t
}

func randomEvent(rng *rand.Rand, in Info) *segment.EventCond {
	e := &segment.EventCond{Name: pick(rng, Events)}
	for range rng.IntN(3) {
		p := segment.PropCond{Prop: pick(rng, Props), Cmp: pick(rng, segment.PropOperators)}
		value := func() any {
			switch rng.IntN(3) {
			case 0:
				return pick(rng, Numbers)
			case 1:
				return rng.IntN(2) == 0
			}
			return pick(rng, Strings)
		}
		switch p.Cmp {
		case "in", "not_in":
			p.Value = []any{value(), value()}
		case "gt", "gte", "lt", "lte":
			p.Value = pick(rng, Numbers)
		case "contains":
			p.Value = pick(rng, Strings)
		case "is_set", "is_not_set":
		default:
			p.Value = value()
		}
		e.Where = append(e.Where, p)
	}
	if rng.IntN(4) == 0 {
		e.Timing = pick(rng, []string{"first", "last"})
		e.Cmp = pick(rng, segment.Operators[segment.DateTime])
		e.Value = randomValue(rng, in, segment.DateTime, e.Cmp)
		return e
	}
	e.Window = randomWindow(rng, in)
	if rng.IntN(2) == 0 {
		e.Count = &segment.Compare{Cmp: pick(rng, []string{"eq", "ne", "gt", "gte", "lt", "lte"}), Value: float64(rng.IntN(4))}
	}
	return e
}

func randomOrder(rng *rand.Rand, in Info) *segment.OrderCond {
	o := &segment.OrderCond{Metric: pick(rng, []string{"count", "total", "avg", "first_at", "last_at"})}
	t := segment.OrderMetrics[o.Metric]
	o.Cmp = pick(rng, segment.Operators[t])
	o.Value = randomValue(rng, in, t, o.Cmp)
	if t == segment.Number {
		o.Window = randomWindow(rng, in)
	}
	return o
}

// schemaOf gives the attribute types of in to segment.FieldType.
type infoSchema Info

func schemaOf(in Info) infoSchema { return infoSchema(in) }

func (s infoSchema) AttrType(key string) (customer.AttrType, bool) {
	t, ok := s.Attrs[key]
	return t, ok
}
func (s infoSchema) TagExists(int64) bool                    { return true }
func (s infoSchema) TagGroupExists(int64) bool               { return true }
func (s infoSchema) SegmentTree(int64) (*segment.Node, bool) { return nil, false }
