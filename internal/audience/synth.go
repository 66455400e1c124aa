package audience

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Synthetic is a deterministic generated population for benchmarks and property tests: it
// implements Source directly (no database), so the engine can be loaded with 10,000,000
// customers in a minute, and can write the same data into a store for the SQL side of a
// comparison. Customer i's data depend only on Seed and i.
type Synthetic struct {
	N    int
	Seed uint64
	Now  time.Time // the data's "today"; history runs 365 days back
	Loc  *time.Location
}

// Synthetic vocabulary: ~50 tags in 5 groups, ~10 attributes, ~10 event types.
var (
	SynthEvents  = []string{"页面浏览", "加企微", "入群", "打卡", "问卷", "咨询", "领券", "直播观看", "分享", "加购"}
	synthRegions = []string{"广东", "江苏", "山东", "浙江", "河南", "四川", "湖北", "福建", "湖南", "上海", "北京", "安徽", "河北", "陕西", "辽宁", "江西", "重庆", "云南", "广西", "山西", "天津", "内蒙古", "黑龙江", "吉林", "贵州", "新疆", "甘肃", "海南", "宁夏", "青海"}
	synthSources = []string{"渠道活码", "公众号", "小红书", "抖音", "门店", "电商平台"}
	synthLevels  = []string{"普通会员", "初级会员", "中级会员", "高级会员"}
	synthTiers   = []string{"一线", "新一线", "二线", "三线及以下"}
	synthHobbies = []string{"瑜伽", "跑步", "烘焙", "阅读", "旅行", "摄影", "健身", "美妆", "育儿", "宠物"}
)

// SynthTagGroups and SynthTagsPerGroup shape the tag vocabulary: tag ids are
// 1..SynthTagGroups*SynthTagsPerGroup, group g (1-based) holding tags (g-1)*per+1..g*per.
const (
	SynthTagGroups    = 5
	SynthTagsPerGroup = 10
)

// SynthAttrDefs are the synthetic attributes and their types.
var SynthAttrDefs = []customer.AttrDef{
	{Key: "income", Type: customer.AttrNumber}, {Key: "points", Type: customer.AttrNumber}, {Key: "age", Type: customer.AttrNumber},
	{Key: "level", Type: customer.AttrString}, {Key: "city_tier", Type: customer.AttrString},
	{Key: "is_member", Type: customer.AttrBool}, {Key: "wechat_bound", Type: customer.AttrBool},
	{Key: "hobbies", Type: customer.AttrList}, {Key: "joined", Type: customer.AttrDate}, {Key: "expires", Type: customer.AttrDate},
}

// SynthPerson is everything generated for one customer.
type SynthPerson struct {
	Customer *customer.Customer
	Tags     []int64
	OptOuts  []string
	Events   []SynthEvent
	Orders   []SynthOrder
}

// SynthEvent is one generated event.
type SynthEvent struct {
	Name string
	At   time.Time
}

// SynthOrder is one generated order.
type SynthOrder struct {
	At            time.Time
	AmountMinor   int64
	RefundedMinor int64
}

func (s *Synthetic) loc() *time.Location {
	if s.Loc == nil {
		return segment.Shanghai
	}
	return s.Loc
}

// base draws what every aspect of customer id depends on: acquisition day and usual hour.
func (s *Synthetic) base(id int64) (created segment.Day, hour int) {
	r := rand.New(rand.NewPCG(s.Seed, uint64(id)<<3))
	today := segment.DayOf(s.Now, s.loc())
	created = today - segment.Day(r.IntN(365))
	hour = 8 + r.IntN(15)
	if r.IntN(3) == 0 {
		hour = 20
	}
	return created, hour
}

func (s *Synthetic) rng(id int64, aspect uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s.Seed, uint64(id)<<3|aspect))
}

func (s *Synthetic) at(r *rand.Rand, d segment.Day, hour int) time.Time {
	return d.Start(s.loc()).Add(time.Duration(hour)*time.Hour + time.Duration(r.IntN(3600))*time.Second)
}

// Person generates customer id (1-based), every aspect of it.
func (s *Synthetic) Person(id int64) *SynthPerson {
	return &SynthPerson{Customer: s.customer(id), Tags: s.tags(id), Events: s.events(id), Orders: s.orders(id), OptOuts: s.optOuts(id)}
}

func (s *Synthetic) customer(id int64) *customer.Customer {
	created, _ := s.base(id)
	r := s.rng(id, 1)
	today := segment.DayOf(s.Now, s.loc())
	c := &customer.Customer{ID: id, Attrs: map[string]any{}, CreatedAt: s.at(r, created, r.IntN(24))}
	switch x := r.IntN(100); {
	case x < 55:
		c.Gender = "female"
	case x < 95:
		c.Gender = "male"
	}
	c.Name = fmt.Sprintf("客户%07d", id)
	if r.IntN(10) < 8 {
		c.Phone = fmt.Sprintf("1%02d%08d", 30+r.IntN(60), id%100000000)
	}
	c.Region = synthRegions[int(math.Min(float64(len(synthRegions)-1), r.ExpFloat64()*6))]
	c.Source = synthSources[r.IntN(len(synthSources))]
	if r.IntN(10) < 8 {
		c.OwnerID = int64(1 + r.IntN(20))
	}
	if r.IntN(10) < 8 {
		c.Birthday = segment.DayOfDate(1960+r.IntN(46), time.Month(1+r.IntN(12)), 1+r.IntN(28)).Date().Format("2006-01-02")
	}
	if r.IntN(10) < 7 {
		c.Attrs["income"] = float64(int(3000 * math.Exp(r.NormFloat64()*0.6+0.5)))
	}
	if r.IntN(10) < 6 {
		c.Attrs["points"] = float64(r.IntN(10000))
	}
	if r.IntN(10) < 5 {
		c.Attrs["age"] = float64(18 + r.IntN(50))
	}
	c.Attrs["level"] = synthLevels[min(3, int(r.ExpFloat64()))]
	if r.IntN(10) < 9 {
		c.Attrs["city_tier"] = synthTiers[r.IntN(4)]
	}
	if r.IntN(2) == 0 {
		c.Attrs["is_member"] = r.IntN(3) == 0
	}
	if r.IntN(3) == 0 {
		c.Attrs["wechat_bound"] = true
	}
	if n := r.IntN(4); n > 0 {
		hs := []any{}
		for _, i := range r.Perm(len(synthHobbies))[:n] {
			hs = append(hs, synthHobbies[i])
		}
		c.Attrs["hobbies"] = hs
	}
	if r.IntN(2) == 0 {
		c.Attrs["joined"] = created.Date().Format("2006-01-02")
	}
	if r.IntN(10) < 3 {
		c.Attrs["expires"] = (today + segment.Day(r.IntN(400)-30)).Date().Format("2006-01-02")
	}
	// Last seen is the last event's time: the events stream decides it.
	var last time.Time
	for _, e := range s.events(id) {
		if e.At.After(last) {
			last = e.At
		}
	}
	c.LastSeenAt = last
	if s.optOuts(id) != nil {
		c.OptOuts = s.optOuts(id)
	}
	return c
}

func (s *Synthetic) tags(id int64) []int64 {
	r := s.rng(id, 2)
	var tags []int64
	for i, n := 0, r.IntN(9); i < n; i++ {
		g := r.IntN(SynthTagGroups)
		t := int64(g*SynthTagsPerGroup + min(SynthTagsPerGroup-1, int(r.ExpFloat64()*3)) + 1)
		if !slicesContains(tags, t) {
			tags = append(tags, t)
		}
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
	return tags
}

func slicesContains(xs []int64, x int64) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Synthetic) optOuts(id int64) []string {
	if s.rng(id, 3).IntN(50) == 0 {
		return []string{"sms"}
	}
	return nil
}

func (s *Synthetic) events(id int64) []SynthEvent {
	created, hour := s.base(id)
	r := s.rng(id, 4)
	span := int(segment.DayOf(s.Now, s.loc())-created) + 1
	nev := int(r.ExpFloat64() * 10)
	out := make([]SynthEvent, 0, nev)
	for i := 0; i < nev; i++ {
		d := created + segment.Day(r.IntN(span))
		h := hour
		if r.IntN(3) == 0 {
			h = r.IntN(24)
		}
		name := SynthEvents[min(len(SynthEvents)-1, int(r.ExpFloat64()*2.5))]
		out = append(out, SynthEvent{Name: name, At: s.at(r, d, h)})
	}
	return out
}

func (s *Synthetic) orders(id int64) []SynthOrder {
	created, hour := s.base(id)
	r := s.rng(id, 5)
	span := int(segment.DayOf(s.Now, s.loc())-created) + 1
	var norders int
	switch x := r.IntN(100); {
	case x < 40:
	case x < 75:
		norders = 1
	case x < 95:
		norders = 2 + r.IntN(3)
	default:
		norders = 5 + r.IntN(16)
	}
	var out []SynthOrder
	for i := 0; i < norders; i++ {
		o := SynthOrder{At: s.at(r, created+segment.Day(r.IntN(span)), hour), AmountMinor: int64(15000 * math.Exp(r.NormFloat64()*0.7))}
		if r.IntN(20) == 0 {
			o.RefundedMinor = o.AmountMinor
		} else if r.IntN(20) == 0 {
			o.RefundedMinor = o.AmountMinor / 2
		}
		out = append(out, o)
	}
	return out
}

// The Source methods below serve the engine straight from the generator.

// ScanCustomers implements Source.
func (s *Synthetic) ScanCustomers(ctx context.Context, fn func(*customer.Customer) error) error {
	return generate(ctx, s.N, s.customer, func(_ int64, c *customer.Customer) error { return fn(c) })
}

// generate makes gen(id) for customers 1..n on every core, a chunk at a time, and hands the
// results to emit in id order on the caller's goroutine.
func generate[T any](ctx context.Context, n int, gen func(id int64) T, emit func(id int64, v T) error) error {
	const chunk = 4096
	type batch struct {
		from int64
		out  []T
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *batch, workers)
	order := make(chan *batch, 2*workers)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(jobs)
		defer close(order)
		for from := int64(1); from <= int64(n); from += chunk {
			b := &batch{from: from, out: make([]T, min(chunk, int64(n)-from+1)), done: make(chan struct{})}
			select {
			case order <- b:
			case <-stop:
				return
			}
			jobs <- b
		}
	}()
	for w := 0; w < workers; w++ {
		go func() {
			for b := range jobs {
				for i := range b.out {
					b.out[i] = gen(b.from + int64(i))
				}
				close(b.done)
			}
		}()
	}
	for b := range order {
		<-b.done
		for i, v := range b.out {
			if err := emit(b.from+int64(i), v); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// CustomersByID implements Source.
func (s *Synthetic) CustomersByID(ctx context.Context, ids []int64) ([]*customer.Customer, error) {
	var out []*customer.Customer
	for _, id := range ids {
		if id >= 1 && id <= int64(s.N) {
			out = append(out, s.customer(id))
		}
	}
	return out, nil
}

// eachID calls fn for ids, or for every customer when ids is nil.
func (s *Synthetic) eachID(ids []int64, fn func(id int64)) {
	if ids == nil {
		for id := int64(1); id <= int64(s.N); id++ {
			fn(id)
		}
		return
	}
	for _, id := range ids {
		if id >= 1 && id <= int64(s.N) {
			fn(id)
		}
	}
}

// ScanOptOuts implements Source.
func (s *Synthetic) ScanOptOuts(ctx context.Context, ids []int64, fn func(int64, string)) error {
	s.eachID(ids, func(id int64) {
		for _, ch := range s.optOuts(id) {
			fn(id, ch)
		}
	})
	return nil
}

// ScanCustomerTags implements Source.
func (s *Synthetic) ScanCustomerTags(ctx context.Context, ids []int64, fn func(int64, int64)) error {
	s.eachID(ids, func(id int64) {
		for _, t := range s.tags(id) {
			fn(id, t)
		}
	})
	return nil
}

// TagGroups implements Source.
func (s *Synthetic) TagGroups(ctx context.Context) (map[int64]int64, error) {
	m := map[int64]int64{}
	for t := int64(1); t <= SynthTagGroups*SynthTagsPerGroup; t++ {
		m[t] = (t-1)/SynthTagsPerGroup + 1
	}
	return m, nil
}

// AttrDefs implements Source.
func (s *Synthetic) AttrDefs(ctx context.Context) ([]customer.AttrDef, error) {
	return SynthAttrDefs, nil
}

// MaxEventID implements Source; synthetic events have no ids.
func (s *Synthetic) MaxEventID(ctx context.Context) (int64, error) { return 0, nil }

type synthDay struct {
	name  string
	day   int32
	count int64
	net   int64
}

// ScanEventDays implements Source.
func (s *Synthetic) ScanEventDays(ctx context.Context, off int, maxID int64, fn func(int64, string, int32, int64)) error {
	return generate(ctx, s.N, func(id int64) []synthDay { return s.eventDays(id, off) }, func(id int64, days []synthDay) error {
		for _, d := range days {
			fn(id, d.name, d.day, d.count)
		}
		return nil
	})
}

func (s *Synthetic) eventDays(id int64, off int) []synthDay {
	var out []synthDay
	for _, e := range s.events(id) {
		d := int32((e.At.UnixMilli() + int64(off)*1000) / 86400000)
		found := false
		for i := range out {
			if out[i].name == e.Name && out[i].day == d {
				out[i].count++
				found = true
				break
			}
		}
		if !found {
			out = append(out, synthDay{name: e.Name, day: d, count: 1})
		}
	}
	return out
}

// ScanOrderDays implements Source.
func (s *Synthetic) ScanOrderDays(ctx context.Context, off int, ids []int64, fn func(int64, int32, int64, int64)) error {
	emit := func(id int64, days []synthDay) error {
		for _, d := range days {
			fn(id, d.day, d.count, d.net)
		}
		return nil
	}
	if ids == nil {
		return generate(ctx, s.N, func(id int64) []synthDay { return s.orderDays(id, off) }, emit)
	}
	s.eachID(ids, func(id int64) { _ = emit(id, s.orderDays(id, off)) })
	return nil
}

func (s *Synthetic) orderDays(id int64, off int) []synthDay {
	var out []synthDay
	for _, o := range s.orders(id) {
		if o.RefundedMinor >= o.AmountMinor && o.AmountMinor > 0 {
			continue
		}
		d := int32((o.At.UnixMilli() + int64(off)*1000) / 86400000)
		i := 0
		for i < len(out) && out[i].day != d {
			i++
		}
		if i == len(out) {
			out = append(out, synthDay{day: d})
		}
		out[i].count++
		out[i].net += o.AmountMinor - o.RefundedMinor
	}
	return out
}

// ScanHourCounts implements Source.
func (s *Synthetic) ScanHourCounts(ctx context.Context, orders bool, off int, since, until int64, ids []int64, fn func(int64, int, int, int64)) error {
	type hourCount struct{ h, wd, n int }
	gen := func(id int64) []hourCount {
		var out []hourCount
		add := func(t time.Time) {
			ms := t.UnixMilli()
			if ms < since || ms > until {
				return
			}
			local := ms + int64(off)*1000
			h, wd := int(local/3600000%24), int((local/86400000+3)%7)+1
			for i := range out {
				if out[i].h == h && out[i].wd == wd {
					out[i].n++
					return
				}
			}
			out = append(out, hourCount{h, wd, 1})
		}
		if orders {
			for _, o := range s.orders(id) {
				if !(o.RefundedMinor >= o.AmountMinor && o.AmountMinor > 0) {
					add(o.At)
				}
			}
		} else {
			for _, e := range s.events(id) {
				add(e.At)
			}
		}
		return out
	}
	emit := func(id int64, hcs []hourCount) error {
		for _, hc := range hcs {
			fn(id, hc.h, hc.wd, int64(hc.n))
		}
		return nil
	}
	if ids == nil {
		return generate(ctx, s.N, gen, emit)
	}
	s.eachID(ids, func(id int64) { _ = emit(id, gen(id)) })
	return nil
}
