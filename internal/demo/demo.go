// Package demo generates a realistic private-domain data set: a sales and operations team,
// customers acquired over a year through 渠道活码, 公众号, 小红书, 抖音, 门店 and 电商平台, their
// WeCom adds, group joins, check-ins, surveys and consultations, and orders with the long tail
// real shops see (most never buy, many buy once, a few buy again and again). It is what
// `siyu demo` serves, and a load for benchmarks: a million customers load in minutes.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Options shape the data set.
type Options struct {
	// Customers is how many customers to create (default 20000).
	Customers int
	// Seed makes the data set: the same Seed and Anchor give the same rows, byte for byte.
	Seed int64
	// Anchor is "now" for the data: activity runs for 12 months up to it (default: the start
	// of today, UTC, so a day's runs agree).
	Anchor time.Time
	// StaffPassword, when set, lets every demo staff member sign in with it.
	StaffPassword string
	// Progress, when set, counts customers written.
	Progress *progress.Reporter
}

// Summary counts what was generated.
type Summary struct {
	Staff        int           `json:"staff"`
	Customers    int           `json:"customers"`
	Identities   int           `json:"identities"`
	Events       int           `json:"events"`
	Orders       int           `json:"orders"`
	Refunds      int           `json:"refunds"`
	Buyers       int           `json:"buyers"`
	RevenueMinor int64         `json:"revenue_minor"` // paid minus refunded, in fen
	Elapsed      time.Duration `json:"elapsed"`
}

// The attribute definitions of the demo's custom fields.
var attrDefs = []customer.AttrDef{
	{Key: "会员等级", Type: customer.AttrString, Label: "会员等级"},
	{Key: "city_tier", Type: customer.AttrString, Label: "城市等级"},
	{Key: "hobbies", Type: customer.AttrList, Label: "兴趣爱好"},
	{Key: "income", Type: customer.AttrNumber, Label: "月收入(元)"},
	{Key: "is_member", Type: customer.AttrBool, Label: "是否会员"},
	{Key: "skin_type", Type: customer.AttrString, Label: "肤质"},
}

const (
	day           = 24 * time.Hour
	span          = 365 * day
	chunkSize     = 1000  // customers generated together
	chunksPerTx   = 25    // 25,000 customers per transaction
	maxEventsEach = 400   // the most active customer's events
	refundRate    = 0.06  // share of orders refunded, fully or partly
	unownedRate   = 0.08  // customers no sales person has taken yet
	emailRate     = 0.12  // customers who gave an email
	minDiscount   = 19900 // orders from ¥199 may carry a coupon
)

// Generate writes a demo data set into an empty database (no customers yet; the demo staff
// logins must be free). Customers get ids 1…N in order of acquisition.
func Generate(ctx context.Context, st *store.Store, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Customers <= 0 {
		opts.Customers = 20000
	}
	if opts.Anchor.IsZero() {
		opts.Anchor = time.Now().UTC().Truncate(day)
	}
	opts.Anchor = opts.Anchor.Truncate(time.Millisecond)
	var n int
	if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM customers`).Scan(&n); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if n > 0 {
		return nil, fmt.Errorf("demo: the database already has %d customers; generate into an empty one", n)
	}
	// Nobody serves the database yet: the rows need not travel through the change feed.
	defer st.PauseChangeFeed()()
	g := newGenerator(opts)
	sum := &Summary{}
	hash := ""
	if opts.StaffPassword != "" {
		h, err := staff.HashPassword(opts.StaffPassword)
		if err != nil {
			return nil, fmt.Errorf("demo: staff password: %w", err)
		}
		hash = h
	}
	// The tables are empty: drop the secondary indexes whose keys would arrive in random order
	// and build them once at the end. Those led by the customer id or the acquisition time
	// grow at their end as customers are written in order, so they stay.
	var indexes []string
	err := st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if indexes, err = tx.DropIndexes(keepIndex, "customers", "identities", "events", "orders"); err != nil {
			return err
		}
		if err := tx.BulkInsertStaff(g.staff, hash); err != nil {
			return err
		}
		defs := make([]customer.AttrDef, len(attrDefs))
		for i, d := range attrDefs {
			d.CreatedAt = g.begin.Add(-30 * day)
			defs[i] = d
		}
		return tx.BulkInsertAttrDefs(defs)
	})
	if err != nil {
		return nil, fmt.Errorf("demo: staff: %w", err)
	}
	restored := false
	defer func() {
		if !restored { // a failed load still gets its indexes back
			st.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.CreateIndexes(indexes) })
		}
	}()
	sum.Staff = len(g.staff)
	g.logins = map[int64]string{}
	for _, m := range g.staff {
		g.logins[m.ID] = m.Login
		if m.Role == staff.Sales {
			g.sales = append(g.sales, m)
		}
	}

	// Chunks are generated in parallel and written in order, so ids are deterministic.
	chunks := (opts.Customers + chunkSize - 1) / chunkSize
	futures := make(chan chan *chunk, runtime.GOMAXPROCS(0)*2)
	genCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(futures)
		for k := range chunks {
			f := make(chan *chunk, 1)
			select {
			case futures <- f:
			case <-genCtx.Done():
				return
			}
			go func() { f <- g.chunk(k) }()
		}
	}()
	opts.Progress.SetTotal(int64(opts.Customers))
	for done := 0; done < chunks; {
		err := st.InTx(ctx, func(tx *store.Tx) error {
			for i := 0; i < chunksPerTx && done < chunks; i++ {
				c := <-<-futures
				if err := c.write(tx); err != nil {
					return err
				}
				c.count(sum)
				done++
				opts.Progress.Add(len(c.customers))
			}
			return ctx.Err()
		})
		if err != nil {
			return sum, fmt.Errorf("demo: %w", err)
		}
	}
	opts.Progress.Done()
	t := time.Now()
	slog.Info("demo: building indexes", "events", sum.Events)
	if err := st.InTx(ctx, func(tx *store.Tx) error { return tx.CreateIndexes(indexes) }); err != nil {
		return sum, fmt.Errorf("demo: %w", err)
	}
	restored = true
	slog.Info("demo: indexes built", "elapsed", time.Since(t).Round(time.Millisecond))
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// keepIndex names the indexes a load keeps (see Generate).
func keepIndex(name string) bool {
	switch name {
	case "events_customer_ts", "identities_customer", "customers_created", "orders_customer_paid":
		return true
	}
	return false
}

// generator holds what every chunk shares. It is read-only once built.
type generator struct {
	opts       Options
	begin, end time.Time
	dayCDF     []float64 // acquisition intensity per day, cumulative, normalised
	staff      []*staff.Staff
	sales      []*staff.Staff
	logins     map[int64]string // staff id → login
	hours      weighted[int]
}

func newGenerator(opts Options) *generator {
	g := &generator{opts: opts, end: opts.Anchor, begin: opts.Anchor.Add(-span)}
	for h, w := range hourWeights {
		g.hours = append(g.hours, struct {
			v int
			w float64
		}{h, w})
	}
	// Acquisition grows over the year, more at weekends, with spikes at the shopping festivals
	// (618, 双11, 双12) and around 38女王节.
	w := make([]float64, 365)
	total := 0.0
	for d := range w {
		t := g.begin.Add(time.Duration(d) * day).In(china)
		v := 0.6 + 0.8*float64(d)/365
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v *= 1.2
		}
		for _, fest := range [][2]int{{6, 18}, {11, 11}, {12, 12}, {3, 8}} {
			f := time.Date(t.Year(), time.Month(fest[0]), fest[1], 0, 0, 0, 0, china)
			if dd := math.Abs(t.Sub(f).Hours() / 24); dd < 7 {
				v *= 1 + 2.5*math.Exp(-dd/2)
			}
		}
		total += v
		w[d] = total
	}
	for d := range w {
		w[d] /= total
	}
	g.dayCDF = w
	created := g.begin.Add(-60 * day)
	for _, s := range demoStaff {
		g.staff = append(g.staff, &staff.Staff{Login: s.login, Name: s.name, Email: s.login + "@demo.siyu.local", Department: s.dept, Role: staff.Role(s.role), CreatedAt: created})
	}
	return g
}

// china is UTC+8: people's days and evenings are in China time.
var china = time.FixedZone("CST", 8*3600)

// rng is the generator of customer i: independent of every other customer, so chunks can be
// built in any order and still give the same data.
func (g *generator) rng(i int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(g.opts.Seed)^0x5349_5955_0000_0000, uint64(i)<<8|stream))
}

// at places a moment on day d (days since begin) at an hour people are active.
func (g *generator) at(r *rand.Rand, d time.Time) time.Time {
	y, m, dd := d.In(china).Date()
	t := time.Date(y, m, dd, g.hours.pick(r), r.IntN(60), r.IntN(60), 0, china).Add(time.Duration(r.IntN(1000)) * time.Millisecond)
	return t.UTC()
}

// chunk is the rows of chunkSize customers.
type chunk struct {
	customers  []*customer.Customer
	identities []store.BulkIdentity
	events     []*event.Event
	orders     []*event.Order
}

func (c *chunk) write(tx *store.Tx) error {
	if err := tx.BulkInsertCustomers(c.customers); err != nil {
		return err
	}
	if err := tx.BulkInsertIdentities(c.identities); err != nil {
		return err
	}
	if err := tx.BulkInsertEvents(c.events); err != nil {
		return err
	}
	return tx.BulkInsertOrders(c.orders)
}

func (c *chunk) count(s *Summary) {
	s.Customers += len(c.customers)
	s.Identities += len(c.identities)
	s.Events += len(c.events)
	s.Orders += len(c.orders)
	buyers := map[int64]bool{}
	for _, o := range c.orders {
		buyers[o.CustomerID] = true
		s.RevenueMinor += o.AmountMinor - o.RefundedMinor
		if o.RefundedMinor > 0 {
			s.Refunds++
		}
	}
	s.Buyers += len(buyers)
}

func (g *generator) chunk(k int) *chunk {
	c := &chunk{}
	for i := k * chunkSize; i < min((k+1)*chunkSize, g.opts.Customers); i++ {
		g.customer(c, i)
	}
	return c
}

// customer generates customer number i (id i+1) with identities, events and orders.
func (g *generator) customer(c *chunk, i int) {
	r := g.rng(i, 0)
	id := int64(i + 1)
	n := g.opts.Customers

	// Acquired on a day drawn from the intensity curve; ids follow acquisition order.
	u := (float64(i) + r.Float64()) / float64(n)
	d := sort.SearchFloat64s(g.dayCDF, u)
	acquired := g.at(r, g.begin.Add(time.Duration(min(d, 364))*day))
	if acquired.After(g.end) {
		acquired = g.end.Add(-time.Minute)
	}
	cu := &customer.Customer{ID: id, CreatedAt: acquired, Attrs: map[string]any{}}
	cu.Source = sources.pick(r)

	switch x := r.Float64(); {
	case x < 0.62:
		cu.Gender = "female"
	case x < 0.95:
		cu.Gender = "male"
	}
	if chance(r, 0.8) {
		cu.Name = chineseName(r, cu.Gender)
	} else {
		cu.Name = oneOf(r, nicknames)
	}
	if chance(r, 0.78) {
		year := 1998 - int(math.Abs(r.NormFloat64()*8)) + r.IntN(4)
		cu.Birthday = time.Date(year, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format("2006-01-02")
	}
	tier := ""
	if chance(r, 0.92) {
		p := pickProvince(r)
		ct := pickCity(r, p)
		tier = ct.tier
		if ct.name == p.name {
			cu.Region = p.name
		} else {
			cu.Region = p.name + ct.name
		}
		cu.Attrs["city_tier"] = tier
	}
	if !chance(r, unownedRate) {
		cu.OwnerID = g.sales[ownerIndex(r, len(g.sales))].ID
	}

	// Engagement decides how much the customer does; buying class how much they buy.
	engaged := logNormal(r, 0, 0.8)
	buyer := pickBuyer(r, cu.Source, engaged)
	orders := g.orders(r, id, acquired, buyer)
	spent := int64(0)
	for _, o := range orders {
		spent += o.AmountMinor - o.RefundedMinor
	}

	// Identities. Buyers always have a member id; WeCom contacts have an external id.
	wecom := cu.Source == "渠道活码" || cu.Source == "门店" || chance(r, 0.45)
	var ids []customer.Identity
	if len(orders) > 0 || chance(r, 0.35) {
		ids = append(ids, customer.Identity{Kind: customer.UserID, Value: fmt.Sprintf("M%08d", 10_000_000+i)})
	}
	if wecom {
		ids = append(ids, customer.Identity{Kind: customer.WeComExternal, Value: "wm" + token(mix(uint64(i)^uint64(g.opts.Seed)<<1), 12) + token(mix(uint64(i)+7), 14)})
	}
	if cu.Source == "公众号" || chance(r, 0.4) {
		ids = append(ids, customer.Identity{Kind: customer.UnionID, Value: "o" + token(mix(uint64(i)^0xa5a5^uint64(g.opts.Seed)), 12) + token(mix(uint64(i)+13), 15)})
	}
	if chance(r, 0.88) || len(ids) == 0 {
		cu.Phone = phone(r, i)
		ids = append(ids, customer.Identity{Kind: customer.PhoneID, Value: cu.Phone})
	}
	if chance(r, emailRate) {
		cu.Email = fmt.Sprintf("%d@%s", 100_000+uint64(i)*7+uint64(r.IntN(7)), oneOf(r, []string{"qq.com", "163.com", "126.com", "foxmail.com", "gmail.com"}))
		ids = append(ids, customer.Identity{Kind: customer.EmailID, Value: cu.Email})
	}
	for _, ident := range ids {
		c.identities = append(c.identities, store.BulkIdentity{CustomerID: id, Kind: ident.Kind, Value: ident.Value, CreatedAt: acquired})
	}

	// Attributes.
	member := len(orders) > 0 && chance(r, 0.8) || chance(r, 0.15)
	cu.Attrs["is_member"] = member
	if member {
		cu.Attrs["会员等级"] = memberLevel(spent)
	}
	if chance(r, 0.6) {
		hs := map[string]bool{}
		for range 1 + r.IntN(3) {
			hs[oneOf(r, hobbies)] = true
		}
		list := make([]string, 0, len(hs))
		for _, h := range hobbies {
			if hs[h] {
				list = append(list, h)
			}
		}
		cu.Attrs["hobbies"] = list
	}
	if chance(r, 0.4) {
		inc := logNormal(r, math.Log(8000), 0.55)
		if tier == tier1 {
			inc *= 1.5
		}
		cu.Attrs["income"] = math.Round(inc/500) * 500
	}

	// Opt-outs: a few people say no to SMS, email or group broadcasts.
	if chance(r, 0.04) {
		cu.OptOuts = append(cu.OptOuts, "sms")
	}
	if cu.Email != "" && chance(r, 0.05) {
		cu.OptOuts = append(cu.OptOuts, "email")
	}
	if chance(r, 0.015) {
		cu.OptOuts = append(cu.OptOuts, "wecom_group")
	}

	events := g.events(r, cu, wecom, engaged, orders)
	last := acquired
	for _, e := range events {
		if e.Timestamp.After(last) {
			last = e.Timestamp
		}
	}
	for _, e := range events {
		if st, ok := e.Properties["skin_type"].(string); ok {
			cu.Attrs["skin_type"] = st
		}
	}
	cu.LastSeenAt = last
	cu.UpdatedAt = last
	c.customers = append(c.customers, cu)
	c.events = append(c.events, events...)
	c.orders = append(c.orders, orders...)
}

func chineseName(r *rand.Rand, gender string) string {
	chars := femaleChars
	if gender == "male" || (gender == "" && chance(r, 0.5)) {
		chars = maleChars
	}
	name := surnames.pick(r) + oneOf(r, chars)
	if chance(r, 0.7) {
		name += oneOf(r, chars)
	}
	return name
}

var provinceTable = func() weighted[int] {
	var t weighted[int]
	for i, p := range provinces {
		t = append(t, struct {
			v int
			w float64
		}{i, float64(p.weight)})
	}
	return t
}()

func pickProvince(r *rand.Rand) province { return provinces[provinceTable.pick(r)] }

func pickCity(r *rand.Rand, p province) city {
	total := 0
	for _, c := range p.cities {
		total += c.weight
	}
	x := r.IntN(total)
	for _, c := range p.cities {
		if x < c.weight {
			return c
		}
		x -= c.weight
	}
	return p.cities[0]
}

// ownerIndex spreads customers unevenly over the sales team: some sales people carry more.
func ownerIndex(r *rand.Rand, n int) int {
	for {
		i := int(math.Abs(r.NormFloat64()) * float64(n) / 1.8)
		if i < n {
			return i
		}
	}
}

// phone makes a mainland mobile number unique to customer i: the last eight digits are an
// affine bijection of i, the prefix a real carrier prefix.
func phone(r *rand.Rand, i int) string {
	prefixes := []string{"130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "182", "185", "186", "187", "188", "189", "191", "198", "199"}
	return oneOf(r, prefixes) + fmt.Sprintf("%08d", (uint64(i)*48_271+12_345_679)%100_000_000)
}

// Buying classes.
const (
	never = iota
	once
	repeat
	heavy
)

// pickBuyer: about half never buy, a third buy once, one in seven buys a few times and a
// few percent are the heavy repurchasers who make much of the revenue. Engaged customers buy
// more; customers acquired near the anchor have had no time to.
func pickBuyer(r *rand.Rand, source string, engaged float64) int {
	p := []float64{0.40, 0.35, 0.18, 0.07}
	switch source {
	case "电商平台", "门店":
		p = []float64{0.25, 0.40, 0.25, 0.10}
	case "抖音", "小红书":
		p = []float64{0.50, 0.32, 0.13, 0.05}
	}
	x := r.Float64() / math.Min(1.3, math.Max(0.8, engaged))
	for k, v := range p {
		if x < v {
			return k
		}
		x -= v
	}
	return never
}

func memberLevel(spent int64) string {
	switch {
	case spent >= 800_000:
		return "黑金会员"
	case spent >= 200_000:
		return "金卡会员"
	case spent >= 50_000:
		return "银卡会员"
	}
	return "普通会员"
}

// orders draws the customer's purchases from acquisition to the anchor.
func (g *generator) orders(r *rand.Rand, id int64, acquired time.Time, class int) []*event.Order {
	if class == never {
		return nil
	}
	want, gap := 1, 0.0
	switch class {
	case repeat:
		want, gap = 2+r.IntN(3), 45
	case heavy:
		want, gap = 5+int(logNormal(r, 2, 0.6)), 16
	}
	var out []*event.Order
	t := acquired.Add(time.Duration(expo(r, 9*24)) * time.Hour)
	for k := range want {
		if k > 0 {
			t = t.Add(time.Duration(expo(r, gap*24)+12) * time.Hour)
		}
		paid := g.at(r, t)
		if paid.Before(acquired) {
			paid = acquired.Add(time.Duration(r.IntN(3600)) * time.Second)
		}
		if paid.After(g.end) {
			break
		}
		o := &event.Order{OrderID: fmt.Sprintf("DM%s%07d%02d", paid.In(china).Format("060102"), id, k), CustomerID: id, Currency: "CNY", Status: event.Paid, PaidAt: paid, Source: "demo"}
		lines := 1
		if x := r.Float64(); x > 0.7 {
			lines = 2
			if x > 0.92 {
				lines = 3
			}
		}
		seen := map[string]bool{}
		for range lines {
			p := products.pick(r)
			if class == heavy && p.priceMinor < 5000 && chance(r, 0.6) {
				p = products.pick(r) // heavy buyers skip the trial sizes
			}
			if seen[p.id] {
				continue
			}
			seen[p.id] = true
			q := 1
			if x := r.Float64(); x > 0.85 {
				q = 2
				if x > 0.97 {
					q = 3
				}
			}
			o.Products = append(o.Products, event.Product{ProductID: p.id, SKU: p.id + "-STD", Name: p.name, Category: p.category, PriceMinor: p.priceMinor, Quantity: float64(q)})
			o.AmountMinor += p.priceMinor * int64(q)
		}
		if o.AmountMinor >= minDiscount && chance(r, 0.3) {
			o.AmountMinor -= 3000
		}
		if chance(r, refundRate) {
			at := paid.Add(time.Duration(24+r.IntN(9*24)) * time.Hour)
			if at.Before(g.end) {
				o.RefundedAt = at
				if len(o.Products) > 1 && chance(r, 0.5) {
					o.RefundedMinor = min(o.Products[0].PriceMinor, o.AmountMinor)
				} else {
					o.RefundedMinor = o.AmountMinor
				}
				o.Status = event.PartiallyRefunded
				if o.RefundedMinor >= o.AmountMinor {
					o.Status = event.Refunded
				}
			}
		}
		out = append(out, o)
	}
	return out
}

// events draws what the customer did: the add on WeCom and maybe a group join when they
// arrive, then activity that fades after acquisition (faster for the less engaged), at the
// hours people use their phones, plus an event for each order and refund.
func (g *generator) events(r *rand.Rand, cu *customer.Customer, wecom bool, engaged float64, orders []*event.Order) []*event.Event {
	var out []*event.Event
	owner := g.logins[cu.OwnerID]
	add := func(typ, name string, t time.Time, props map[string]any) {
		if t.After(g.end) {
			return
		}
		out = append(out, &event.Event{CustomerID: cu.ID,
			Type: typ, Name: name, Properties: props, Timestamp: t, ReceivedAt: t})
	}
	t0 := cu.CreatedAt
	if wecom {
		props := map[string]any{"qr_code": oneOf(r, qrCodes[cu.Source]), "source": cu.Source}
		if owner != "" {
			props["staff"] = owner
		}
		add("track", "加企微", t0, props)
		if chance(r, 0.45) {
			gr := groups.pick(r)
			add("track", "入群", t0.Add(time.Duration(r.IntN(72*60))*time.Minute), map[string]any{"group": fmt.Sprintf("%s%d群", gr[0], 1+r.IntN(12)), "group_type": gr[1]})
		}
	}
	life := g.end.Sub(t0).Hours() / 24
	// Events fade after acquisition: a truncated exponential over the customer's lifetime.
	tau := 20 + 70*math.Min(engaged, 2)
	count := int(logNormal(r, 2.0, 0.9) * math.Min(1, 0.25+life/120) * math.Min(2.5, engaged))
	count = min(count, maxEventsEach)
	for range count {
		u := r.Float64()
		off := -tau * math.Log(1-u*(1-math.Exp(-life/tau)))
		t := g.at(r, t0.Add(time.Duration(off*24)*time.Hour))
		if t.Before(t0) {
			t = t0.Add(time.Duration(r.IntN(120)) * time.Minute)
		}
		switch x := r.Float64(); {
		case x < 0.52:
			pg := pages.pick(r)
			path := pg[1]
			if path[len(path)-1] == '/' && len(path) > 1 {
				path += fmt.Sprintf("%d", 1+r.IntN(12))
			}
			add("page", pg[0], t, map[string]any{"path": path, "title": pg[0], "channel": oneOf(r, []string{"小程序", "小程序", "H5", "公众号"})})
		case x < 0.64:
			task := oneOf(r, checkinTasks)
			add("track", "打卡", t, map[string]any{"task": task, "day": 1 + r.IntN(21)})
		case x < 0.74:
			props := map[string]any{"topic": consultTopics.pick(r), "channel": oneOf(r, []string{"私聊", "私聊", "企微客服"})}
			if owner != "" {
				props["staff"] = owner
			}
			add("track", "咨询", t, props)
		case x < 0.78:
			add("track", "提交问卷", t, map[string]any{"survey": oneOf(r, surveys), "skin_type": oneOf(r, skinTypes), "score": 1 + r.IntN(10)})
		case x < 0.86:
			cp := coupons.pick(r)
			add("track", "领取优惠券", t, map[string]any{"coupon": cp[0], "value": cp[1]})
		case x < 0.93:
			add("track", "观看直播", t, map[string]any{"live": oneOf(r, lives), "minutes": 1 + int(expo(r, 12))})
		default:
			add("track", "分享", t, map[string]any{"content": oneOf(r, []string{"新品测评", "护肤小知识", "会员日活动"}), "channel": oneOf(r, []string{"朋友圈", "微信好友", "微信群"})})
		}
	}
	for _, o := range orders {
		add("track", "Order Completed", o.PaidAt, map[string]any{"order_id": o.OrderID, "total": event.MajorUnits(o.AmountMinor, o.Currency), "currency": o.Currency, "products": len(o.Products)})
		if o.RefundedMinor > 0 {
			add("track", "Order Refunded", o.RefundedAt, map[string]any{"order_id": o.OrderID, "total": event.MajorUnits(o.RefundedMinor, o.Currency), "currency": o.Currency})
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Timestamp.Before(out[b].Timestamp) })
	// Message ids sort in insertion order, so the unique index on them grows at its end.
	for k, e := range out {
		e.MessageID = fmt.Sprintf("demo-%08d-%04d", cu.ID, k)
	}
	return out
}
