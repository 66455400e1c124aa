package report

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/email"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, segment.Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// seed: the week of Monday 2026-11-16. c1 new on Tuesday buys twice (Tue ¥100, Sat ¥50 with ¥20
// refunded); c2 from October buys on Sunday 23:59 (¥300) and the Monday after (out of the week).
func seed(t *testing.T, s *store.Store) {
	cs := []*customer.Customer{
		{ID: 1, Name: "c1", CreatedAt: at(t, "2026-11-17 10:00")},
		{ID: 2, Name: "c2", CreatedAt: at(t, "2026-10-02 10:00")},
	}
	o := func(id string, c int64, paid string, amount, refunded int64) *event.Order {
		st := event.Paid
		if refunded > 0 {
			st = event.PartiallyRefunded
		}
		return &event.Order{OrderID: id, CustomerID: c, Status: st, AmountMinor: amount, RefundedMinor: refunded, Currency: "CNY", PaidAt: at(t, paid)}
	}
	orders := []*event.Order{o("o1", 1, "2026-11-17 12:00", 10000, 0), o("o2", 1, "2026-11-21 12:00", 5000, 2000),
		o("o3", 2, "2026-11-22 23:59", 30000, 0), o("o4", 2, "2026-11-23 00:00", 7000, 0)}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		return tx.BulkInsertOrders(orders)
	})
	if err != nil {
		t.Fatal(err)
	}
	obj := &goal.Objective{Name: "十一月", From: "2026-11-01", To: "2026-12-01", KeyResults: []goal.KeyResult{{Name: "GMV ¥1,000", Metric: analytics.MetricGMV, Target: 100000}}}
	if err := s.CreateObjective(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

func TestWeeklyReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		seed(t, s)
		now := at(t, "2026-11-23 09:00")
		monday := LastFullWeek(now, segment.Shanghai)
		if day(monday) != "2026-11-16" {
			t.Fatalf("last full week starts %s", day(monday))
		}
		rep, err := Build(ctx, s, nil, analytics.Scope{}, monday, now, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, d := range rep.Days {
			sum += d.GMVMinor
		}
		gmv := rep.Metric(analytics.MetricGMV)
		if len(rep.Days) != 7 || sum != 43000 || *gmv.Current != 43000 || rep.Days[6].GMVMinor != 30000 || rep.Days[1].NewCustomers != 1 {
			t.Fatalf("days %+v, GMV %v", rep.Days, *gmv.Current)
		}
		// The November goal is measured up to now: 430 + 70 (Monday's order) = ¥500 of ¥1,000.
		if len(rep.Goals) != 1 || *rep.Goals[0].Current != 50000 || rep.Goals[0].Progress.Progress != 0.5 {
			t.Fatalf("goals %+v", rep.Goals)
		}
		html, err := rep.HTML("zh-CN", false)
		if err != nil {
			t.Fatal(err)
		}
		page := string(html)
		for _, want := range []string{"私域运营周报", "2026-11-16 – 2026-11-22", "¥430", "¥300", "十一月", "50%", `href="/reports/weekly.css"`} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if n := strings.Count(page, `<rect class="bar"`); n != 14 {
			t.Errorf("%d bars, want 7 per chart", n)
		}
		if strings.Contains(page, "<style>") || strings.Contains(page, "style=") || strings.Contains(page, "<script") {
			t.Error("the console page has inline style or script (the CSP refuses them)")
		}
		mailHTML, _ := rep.HTML("en", true)
		if !strings.Contains(string(mailHTML), "<style>") || !strings.Contains(string(mailHTML), "Weekly") && !strings.Contains(string(mailHTML), "weekly report") {
			t.Errorf("the email body has no inline style sheet or English title")
		}
	})
}

type fakeMail struct {
	mu   sync.Mutex
	sent []*email.Message
}

func (f *fakeMail) Send(_ context.Context, m *email.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return nil
}

// The Monday job sends last week's report once to the recipients and queues the next Monday.
func TestWeeklyReportIsMailedOnMondays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		seed(t, s)
		now := at(t, "2026-11-20 15:00") // a Friday
		s.SetClock(func() time.Time { return now })
		mail := &fakeMail{}
		svc := New(s, nil, mail, slog.New(slog.NewTextHandler(io.Discard, nil)))
		sch := scheduler.New(s, "test", svc.Log)
		svc.Register(sch)
		if _, err := svc.SetSettings(ctx, &Settings{Enabled: true}, now); err == nil {
			t.Fatal("enabled without recipients was accepted")
		}
		if _, err := svc.SetSettings(ctx, &Settings{Enabled: true, Recipients: []string{"ops@example.com", "x"}}, now); err == nil || !strings.Contains(err.Error(), "recipients[1]") {
			t.Fatalf("bad recipient: %v", err)
		}
		if _, err := svc.SetSettings(ctx, &Settings{Enabled: true, Recipients: []string{"ops@example.com"}}, now); err != nil {
			t.Fatal(err)
		}
		if next := svc.Next(now); !next.Equal(at(t, "2026-11-23 09:00")) {
			t.Fatalf("next %v", next)
		}
		if n, _ := sch.RunDue(ctx, now); n != 0 || len(mail.sent) != 0 {
			t.Fatalf("ran %d jobs before Monday", n)
		}
		now = at(t, "2026-11-23 09:00")
		if n, err := sch.RunDue(ctx, now); err != nil || n != 1 {
			t.Fatalf("Monday: ran %d, %v", n, err)
		}
		if len(mail.sent) != 1 || mail.sent[0].To[0] != "ops@example.com" || !strings.Contains(mail.sent[0].Subject, "2026-11-16") || !strings.Contains(mail.sent[0].HTML, "¥430") {
			t.Fatalf("sent %+v", mail.sent)
		}
		// A retry of the week (the same job queued again by hand) sends nothing new.
		if err := svc.handle(ctx, &store.Job{Kind: JobKind}); err != nil || len(mail.sent) != 1 {
			t.Fatalf("second run: %v, %d sent", err, len(mail.sent))
		}
		st, _ := svc.Settings(ctx)
		if st.LastWeek != "2026-11-16" {
			t.Fatalf("last week %q", st.LastWeek)
		}
		// The next Monday's job is queued.
		now = at(t, "2026-11-30 09:00")
		if n, err := sch.RunDue(ctx, now); err != nil || n != 1 || len(mail.sent) != 2 || !strings.Contains(mail.sent[1].Subject, "2026-11-23") {
			t.Fatalf("the Monday after: ran %d (%v), sent %d", n, err, len(mail.sent))
		}
	})
}
