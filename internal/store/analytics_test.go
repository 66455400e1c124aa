package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// sh is an instant in Shanghai: "2024-03-01 10:00" (seconds and milliseconds optional).
func sh(t *testing.T, s string) time.Time {
	t.Helper()
	for _, layout := range []string{"2006-01-02 15:04:05.000", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if v, err := time.ParseInLocation(layout, s, segment.Shanghai); err == nil {
			return v
		}
	}
	t.Fatalf("bad time %q", s)
	return time.Time{}
}

func day(t *testing.T, s string) segment.Day {
	t.Helper()
	d, ok := segment.ParseDay(s)
	if !ok {
		t.Fatalf("bad day %q", s)
	}
	return d
}

// analyticsData is the hand-built data set of docs/analytics.md's worked example. The period
// is 2024-03-01..2024-03-08 (7 days, Shanghai); the previous one 2024-02-23..2024-03-01.
//
//	c1 qr/A  created 03-01 00:00 (the first instant)   o1 03-03 00:00 10000; o2 03-05 5000 − 2000 refunded
//	c2 qr/B  created 02-29 23:59 (previous period)     o3 03-02 12:00 0 (zero amount); o4 02-25 8000 (before creation)
//	c3 ad/–  created 03-04 12:00                       o5 03-06 3000 fully refunded; o6 03-08 00:00 4000 (the end: out)
//	c4 ad/A  created 01-10                             o7 03-02 2000; o8 03-03 2000 fully refunded; o9 03-07 1000; o10 01-15 500
//	c5 qr/B  created 03-07 08:00, merged into c4       o11 03-07 10:00 700 and an event 03-07 09:00 follow it to c4
//	c6 ad/B  created 03-02 09:00                       o12 03-02 21:00 6000 (half a day later)
//	c7 qr/A  created 03-03 00:00                       o13 03-10 900 (after the period)
func analyticsData(t *testing.T, s *store.Store) (ownerA, ownerB int64) {
	t.Helper()
	a := &staff.Staff{Login: "a", Name: "A", Role: staff.Sales}
	b := &staff.Staff{Login: "b", Name: "B", Role: staff.Sales}
	for _, m := range []*staff.Staff{a, b} {
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
	}
	cust := func(id int64, source string, owner int64, created string) *customer.Customer {
		return &customer.Customer{ID: id, Name: fmt.Sprint("c", id), Source: source, OwnerID: owner, CreatedAt: sh(t, created)}
	}
	cs := []*customer.Customer{
		cust(1, "qr", a.ID, "2024-03-01 00:00"),
		cust(2, "qr", b.ID, "2024-02-29 23:59"),
		cust(3, "ad", 0, "2024-03-04 12:00"),
		cust(4, "ad", a.ID, "2024-01-10 10:00"),
		cust(5, "qr", b.ID, "2024-03-07 08:00"),
		cust(6, "ad", b.ID, "2024-03-02 09:00"),
		cust(7, "qr", a.ID, "2024-03-03 00:00"),
	}
	order := func(id string, c int64, paid string, amount, refunded int64) *event.Order {
		o := &event.Order{OrderID: id, CustomerID: c, Status: event.Paid, AmountMinor: amount, RefundedMinor: refunded, Currency: "CNY", PaidAt: sh(t, paid)}
		switch {
		case refunded >= amount && refunded > 0:
			o.Status, o.RefundedAt = event.Refunded, o.PaidAt.Add(time.Hour)
		case refunded > 0:
			o.Status, o.RefundedAt = event.PartiallyRefunded, o.PaidAt.Add(time.Hour)
		}
		return o
	}
	orders := []*event.Order{
		order("o1", 1, "2024-03-03 00:00", 10000, 0),
		order("o2", 1, "2024-03-05 15:00", 5000, 2000),
		order("o3", 2, "2024-03-02 12:00", 0, 0),
		order("o4", 2, "2024-02-25 10:00", 8000, 0),
		order("o5", 3, "2024-03-06 00:00", 3000, 3000),
		order("o6", 3, "2024-03-08 00:00", 4000, 0),
		order("o7", 4, "2024-03-02 10:00", 2000, 0),
		order("o8", 4, "2024-03-03 10:00", 2000, 2000),
		order("o9", 4, "2024-03-07 10:00", 1000, 0),
		order("o10", 4, "2024-01-15 10:00", 500, 0),
		order("o11", 5, "2024-03-07 10:00", 700, 0),
		order("o12", 6, "2024-03-02 21:00", 6000, 0),
		order("o13", 7, "2024-03-10 10:00", 900, 0),
	}
	n := 0
	ev := func(c int64, name, at string) *event.Event {
		n++
		return &event.Event{MessageID: fmt.Sprint("m", n), CustomerID: c, Type: "track", Name: name, Timestamp: sh(t, at)}
	}
	events := []*event.Event{
		// c1 goes through the whole funnel: 2 h, 22 h and 14 h between the steps.
		ev(1, "加企微", "2024-03-01 10:00"),
		ev(1, "入群", "2024-03-01 12:00"),
		ev(1, "提交问卷", "2024-03-02 10:00"),
		ev(1, "Order Completed", "2024-03-03 00:00"),
		// c2: the questionnaire exactly 3 days after entering counts, the order 1 ms later does not.
		ev(2, "加企微", "2024-03-03 00:00"),
		ev(2, "入群", "2024-03-05 00:00"),
		ev(2, "提交问卷", "2024-03-06 00:00"),
		ev(2, "Order Completed", "2024-03-06 00:00:00.001"),
		ev(2, "page", "2024-03-07 23:59:59.999"),
		// c4: active in the previous period only by its own events (one 1 ms before the period).
		ev(4, "加企微", "2024-02-28 10:00"),
		ev(4, "page", "2024-02-29 23:59:59.999"),
		ev(4, "入群", "2024-03-02 10:00"),
		ev(5, "page", "2024-03-07 09:00"),
		// c6: the questionnaire before joining the group does not count.
		ev(6, "加企微", "2024-03-02 09:00"),
		ev(6, "提交问卷", "2024-03-02 10:00"),
		ev(6, "入群", "2024-03-02 11:00"),
		// c7 enters after the period.
		ev(7, "加企微", "2024-03-09 10:00"),
	}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		if err := tx.BulkInsertOrders(orders); err != nil {
			return err
		}
		if err := tx.BulkInsertEvents(events); err != nil {
			return err
		}
		return tx.Merge(5, 4, "test")
	})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID, b.ID
}

// metricValues maps a metric group to key → value ("-" for null), and key → change.
func metricValues(g analytics.MetricGroup) (cur, prev map[string]string) {
	cur, prev = map[string]string{}, map[string]string{}
	f := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprint(*v)
	}
	for _, m := range g.Metrics {
		cur[m.Key], prev[m.Key] = f(m.Current), f(m.Previous)
	}
	return cur, prev
}

// figures lists the values in analytics.Definitions order.
func figures(new, active, buyers, first, repeat, orders, gmv, aov, repurchase, converted, conversion, median string) map[string]string {
	vals := []string{new, active, buyers, first, repeat, orders, gmv, aov, repurchase, converted, conversion, median}
	out := map[string]string{}
	for i, d := range analytics.Definitions {
		out[d.Key] = vals[i]
	}
	return out
}

func checkFigures(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for _, d := range analytics.Definitions {
		if got[d.Key] != want[d.Key] {
			t.Errorf("%s %s = %s, want %s", what, d.Key, got[d.Key], want[d.Key])
		}
	}
}

func TestAnalyticsMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ownerA, _ := analyticsData(t, s)
		p := analytics.Period{From: day(t, "2024-03-01"), To: day(t, "2024-03-08")}
		rep, err := analytics.Metrics(ctx, s, analytics.Scope{}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if rep.PreviousFrom != "2024-02-23" || rep.PreviousTo != "2024-03-01" {
			t.Errorf("previous period %s..%s", rep.PreviousFrom, rep.PreviousTo)
		}
		cur, prev := metricValues(rep.Total)
		// New: c1 c3 c6 c7 (c2 is a day early, c5 merged away). Active: c1 c2 c4 (c5's event) c6.
		// Buyers: c1 c2 (zero amount) c4 c6 — c3 only refunded. First-time: c1 c6. Repeat: c1
		// (2), c4 (3 with c5's order). Orders 2+1+3+1 = 7; GMV 13000+0+0+3700+6000 = 22700;
		// AOV 3242.86 → 3243. Converted: c1 (2 days), c6 (0.5 days): median 1.25.
		checkFigures(t, "current", cur, figures("4", "4", "4", "2", "2", "7", "22700", "3243", "0.5", "2", "0.5", "1.25"))
		// Previous: c2 new and converted by an order placed before its record (0 days); c4
		// active 1 ms before the period; o4 the only order.
		checkFigures(t, "previous", prev, figures("1", "1", "1", "1", "0", "1", "8000", "8000", "0", "1", "1", "0"))
		for _, m := range rep.Total.Metrics {
			if m.Key == analytics.MetricNewCustomers && (m.Change == nil || *m.Change != 3) {
				t.Errorf("new customers change %v, want 3", m.Change)
			}
			if m.Key == analytics.MetricRepurchaseRate && (m.Change != nil || m.Definition == "") {
				t.Errorf("repurchase rate change %v (previous 0: want null), definition %q", m.Change, m.Definition)
			}
		}

		bySource, err := analytics.Metrics(ctx, s, analytics.Scope{By: "source"}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if len(bySource.Groups) != 2 || bySource.Groups[0].Key != "ad" || bySource.Groups[1].Key != "qr" {
			t.Fatalf("groups %+v", bySource.Groups)
		}
		ad, _ := metricValues(bySource.Groups[0])
		qr, _ := metricValues(bySource.Groups[1])
		checkFigures(t, "ad", ad, figures("2", "2", "2", "1", "1", "4", "9700", "2425", "0.5", "1", "0.5", "0.5"))
		checkFigures(t, "qr", qr, figures("2", "2", "2", "1", "1", "3", "13000", "4333", "0.5", "1", "0.5", "2"))
		total, _ := metricValues(bySource.Total)
		checkFigures(t, "by-source total", total, cur)

		// The sales scope: owner A has c1, c4 and c7.
		mine, err := analytics.Metrics(ctx, s, analytics.Scope{Owner: ownerA}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := metricValues(mine.Total)
		checkFigures(t, "owner A", got, figures("2", "2", "2", "1", "2", "5", "16700", "3340", "1", "1", "0.5", "2"))
		byOwner, err := analytics.Metrics(ctx, s, analytics.Scope{Owner: ownerA, By: "owner"}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if len(byOwner.Groups) != 1 || byOwner.Groups[0].Key != fmt.Sprint(ownerA) {
			t.Errorf("owner A split by owner: %+v", byOwner.Groups)
		}
		nobody, err := analytics.Metrics(ctx, s, analytics.Scope{Owner: -2}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = metricValues(nobody.Total)
		checkFigures(t, "nobody", got, figures("0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "-"))

		// A segment of c1 and c3.
		seg, err := analytics.Metrics(ctx, s, analytics.Scope{Customers: []int64{1, 3}}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = metricValues(seg.Total)
		checkFigures(t, "segment", got, figures("2", "1", "1", "1", "1", "2", "13000", "6500", "1", "1", "0.5", "2"))
		empty, err := analytics.Metrics(ctx, s, analytics.Scope{Customers: []int64{}}, p, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = metricValues(empty.Total)
		checkFigures(t, "empty segment", got, figures("0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "-"))
	})
}

func TestAnalyticsCohorts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		analyticsData(t, s)
		p := analytics.Period{From: day(t, "2024-01-05"), To: day(t, "2024-03-20")} // rounded out to Jan..Mar
		today := day(t, "2024-03-15")
		cells := func(r analytics.CohortRow) string {
			out := fmt.Sprintf("%s n=%d:", r.Cohort, r.Size)
			for _, c := range r.Cells {
				out += fmt.Sprintf(" %d/%v", c.Customers, c.Rate)
			}
			return out
		}
		for _, tc := range []struct {
			metric analytics.CohortMetric
			want   []string
		}{
			// Jan: c4 (active in Feb, and in Mar through c5's event). Feb: c2. Mar: c1 c3 c6 c7
			// (c7's only event is on 03-09).
			{analytics.Retention, []string{"2024-01 n=1: 0/0 1/1 1/1", "2024-02 n=1: 0/0 1/1", "2024-03 n=4: 3/0.75"}},
			// Paid orders: c4 o10 in Jan and o7/o9/o11 in Mar; c2 o4 in Feb, o3 in Mar; in Mar
			// c1, c3 (o6 on 03-08 — o5 was refunded), c6, c7.
			{analytics.Repurchase, []string{"2024-01 n=1: 1/1 0/0 1/1", "2024-02 n=1: 1/1 1/1", "2024-03 n=4: 4/1"}},
		} {
			rep, err := analytics.Cohorts(ctx, s, analytics.Scope{}, analytics.Month, tc.metric, p, today, segment.Shanghai)
			if err != nil {
				t.Fatal(err)
			}
			if rep.From != "2024-01-01" || rep.To != "2024-04-01" || rep.Buckets != 3 {
				t.Errorf("%s: %s..%s, %d buckets", tc.metric, rep.From, rep.To, rep.Buckets)
			}
			var got []string
			for _, r := range rep.Rows {
				got = append(got, cells(r))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s:\n got %q\nwant %q", tc.metric, got, tc.want)
			}
		}
		// By source: ad has c4 (Jan) and c3 c6 (Mar); qr has c2 (Feb) and c1 c7 (Mar).
		rep, err := analytics.Cohorts(ctx, s, analytics.Scope{By: "source"}, analytics.Month, analytics.Retention, p, today, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rep.Rows {
			got = append(got, r.Group+" "+cells(r))
		}
		want := []string{"ad 2024-01 n=1: 0/0 1/1 1/1", "ad 2024-02 n=0: 0/0 0/0", "ad 2024-03 n=2: 1/0.5",
			"qr 2024-01 n=0: 0/0 0/0 0/0", "qr 2024-02 n=1: 0/0 1/1", "qr 2024-03 n=2: 2/1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("by source:\n got %q\nwant %q", got, want)
		}
		// Weeks run from Monday.
		wk, err := analytics.Cohorts(ctx, s, analytics.Scope{}, analytics.Week, analytics.Retention, analytics.Period{From: day(t, "2024-02-27"), To: day(t, "2024-03-05")}, today, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		got = nil
		for _, r := range wk.Rows {
			got = append(got, cells(r))
		}
		// The period rounds out to two cohort weeks, followed to today's week (03-11). Week of
		// 02-26: c2 c1 c6 c7, active that week c1, c6 and c2 (03-03 is its Sunday); the next
		// week c2 again and c7 (03-09); nobody since. c3 has no events.
		want = []string{"2024-02-26 n=4: 3/0.75 2/0.5 0/0", "2024-03-04 n=1: 0/0 0/0"}
		if wk.Until != "2024-03-18" {
			t.Errorf("weeks followed until %s, want 2024-03-18", wk.Until)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("weeks:\n got %q\nwant %q", got, want)
		}
	})
}

func TestAnalyticsFunnel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ownerA, _ := analyticsData(t, s)
		spec := &analytics.FunnelSpec{Steps: []string{"加企微", "入群", "提交问卷", "Order Completed"}, WithinDays: 3,
			Period: analytics.Period{From: day(t, "2024-03-01"), To: day(t, "2024-03-08")}, Split: "source"}
		rep, err := analytics.Funnel(ctx, s, analytics.Scope{}, spec, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		show := func(g analytics.FunnelGroup) string {
			out := g.Key + ":"
			for _, st := range g.Steps {
				m := "-"
				if st.MedianHours != nil {
					m = fmt.Sprint(*st.MedianHours)
				}
				out += fmt.Sprintf(" %d/%v/%v/%s", st.Customers, st.FromPrevious, st.FromFirst, m)
			}
			return out
		}
		// Entering: c1, c2, c6 (c4 entered before the period, c7 after). 入群: all three (2 h,
		// 48 h, 2 h). 提交问卷: c1 (22 h) and c2 (24 h, exactly at the bound); c6's came before
		// 入群. Order Completed: c1 (14 h); c2's is 1 ms too late.
		if got, want := show(rep.Total), ":"+" 3/1/1/- 3/1/1/2 2/0.6667/0.6667/23 1/0.5/0.3333/14"; got != want {
			t.Errorf("total\n got %s\nwant %s", got, want)
		}
		var groups []string
		for _, g := range rep.Groups {
			groups = append(groups, show(g))
		}
		want := []string{"ad: 1/1/1/- 1/1/1/2 0/0/0/- 0/0/0/-", "qr: 2/1/1/- 2/1/1/25 2/1/1/23 1/0.5/0.5/14"}
		if fmt.Sprint(groups) != fmt.Sprint(want) {
			t.Errorf("by source\n got %q\nwant %q", groups, want)
		}
		// Within 2 days c2 reaches only 入群 (48 h is the bound, inclusive).
		spec.WithinDays, spec.Split = 2, ""
		rep, err = analytics.Funnel(ctx, s, analytics.Scope{}, spec, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := show(rep.Total), ": 3/1/1/- 3/1/1/2 1/0.3333/0.3333/22 1/1/0.3333/14"; got != want {
			t.Errorf("within 2 days\n got %s\nwant %s", got, want)
		}
		// The sales scope: owner A has c1 (and c4, c7, who do not enter).
		rep, err = analytics.Funnel(ctx, s, analytics.Scope{Owner: ownerA}, spec, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := show(rep.Total), ": 1/1/1/- 1/1/1/2 1/1/1/22 1/1/1/14"; got != want {
			t.Errorf("owner A\n got %s\nwant %s", got, want)
		}
	})
}

func TestAnalyticsValidation(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	p := analytics.Period{From: day(t, "2024-03-01"), To: day(t, "2024-03-01")}
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"empty period", func() error { _, err := analytics.Metrics(ctx, s, analytics.Scope{}, p, segment.Shanghai); return err }(), "to"},
		{"bad by", func() error {
			_, err := analytics.Metrics(ctx, s, analytics.Scope{By: "name"}, analytics.Period{From: 1, To: 2}, segment.Shanghai)
			return err
		}(), "by"},
		{"one step", (&analytics.FunnelSpec{Steps: []string{"a"}, WithinDays: 1, Period: analytics.Period{From: 1, To: 2}}).Check(), "steps"},
		{"eleven steps", (&analytics.FunnelSpec{Steps: make([]string, 11), WithinDays: 1, Period: analytics.Period{From: 1, To: 2}}).Check(), "steps"},
		{"blank step", (&analytics.FunnelSpec{Steps: []string{"a", " "}, WithinDays: 1, Period: analytics.Period{From: 1, To: 2}}).Check(), "steps[1]"},
		{"zero days", (&analytics.FunnelSpec{Steps: []string{"a", "b"}, WithinDays: 0, Period: analytics.Period{From: 1, To: 2}}).Check(), "within_days"},
		{"bad split", (&analytics.FunnelSpec{Steps: []string{"a", "b"}, WithinDays: 1, Period: analytics.Period{From: 1, To: 2}, Split: "phone"}).Check(), "split"},
	} {
		fe, ok := tc.err.(*customer.FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%s: %v, want a field error on %s", tc.name, tc.err, tc.field)
		}
	}
}
