package recompute_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is a controllable clock shared by the store and the evaluator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// sqlMembers resolves trees as SQL at the clock's time.
func sqlMembers(s *store.Store, c *clock) model.Members {
	return func(ctx context.Context, tree *segment.Node) ([]int64, error) {
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			return nil, err
		}
		return s.SegmentMembersSQL(ctx, tree, sch, c.now(), segment.Shanghai)
	}
}

// load writes n customers with a mix of orders and events before at.
func load(t testing.TB, s *store.Store, rng *rand.Rand, n int, at time.Time) {
	t.Helper()
	day := 24 * time.Hour
	var (
		cs []*customer.Customer
		os []*event.Order
		es []*event.Event
	)
	names := []string{"加企微", "咨询", "入群", "打卡", "分享", model.ReferralEvent}
	for id := int64(1); id <= int64(n); id++ {
		created := at.Add(-time.Duration(1+rng.IntN(200)) * day)
		c := &customer.Customer{ID: id, Name: fmt.Sprintf("c%d", id), CreatedAt: created}
		if rng.IntN(2) == 0 {
			c.LastSeenAt = created
		}
		cs = append(cs, c)
		for k := range rng.IntN(4) {
			paid := at.Add(-time.Duration(1+rng.IntN(150)) * day)
			o := &event.Order{OrderID: fmt.Sprintf("o%d-%d", id, k), CustomerID: id, Status: event.Paid, AmountMinor: 9900, Currency: "CNY", PaidAt: paid}
			if rng.IntN(6) == 0 {
				o.Status, o.RefundedMinor, o.RefundedAt = event.Refunded, o.AmountMinor, paid.Add(time.Hour)
			}
			os = append(os, o)
		}
		for k := range rng.IntN(12) {
			ts := at.Add(-time.Duration(1+rng.IntN(90*24)) * time.Hour)
			es = append(es, &event.Event{MessageID: fmt.Sprintf("e%d-%d", id, k), CustomerID: id, Type: "track", Name: names[rng.IntN(len(names))], Timestamp: ts, ReceivedAt: ts})
		}
	}
	err := s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		if err := tx.BulkInsertOrders(os); err != nil {
			return err
		}
		_, err := tx.InsertEvents(es)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func jobState(t *testing.T, s *store.Store, at time.Time) string {
	t.Helper()
	j, err := s.JobByKey(ctx, recompute.JobKind+":"+at.UTC().Format(time.RFC3339))
	if err != nil {
		return "absent"
	}
	return j.State
}

func TestScheduledRecompute(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sh := segment.Shanghai
		c := &clock{t: time.Date(2026, 11, 2, 2, 0, 0, 0, sh)}
		s.SetClock(c.now)
		load(t, s, rand.New(rand.NewPCG(5, 6)), 120, c.now())
		// Two instances over one database, each with its scheduler and its service.
		var svcs []*recompute.Service
		var schs []*scheduler.Scheduler
		for _, name := range []string{"a", "b"} {
			svc := recompute.New(s, sqlMembers(s, c), quiet)
			sch := scheduler.New(s, name, quiet)
			svc.Register(sch)
			svcs, schs = append(svcs, svc), append(schs, sch)
		}
		if got := svcs[0].Registry.Names(); !slices.Equal(got, []string{"rfm", "lifecycle", "journey", "aipl", "tier"}) {
			t.Fatalf("registry %v", got)
		}
		at3 := time.Date(2026, 11, 2, 3, 0, 0, 0, sh)
		for _, svc := range svcs { // both instances start: one job
			next, err := svc.Ensure(ctx, c.now())
			if err != nil || !next.Equal(at3) {
				t.Fatalf("next %v, want %v (%v)", next, at3, err)
			}
		}
		if n, err := schs[0].RunDue(ctx, c.now()); err != nil || n != 0 {
			t.Fatalf("ran %d before 03:00 (%v)", n, err)
		}

		// 03:00: both instances look for due jobs at once; one runs the recompute.
		c.set(at3.Add(10 * time.Second))
		ran := make([]int, 2)
		var wg sync.WaitGroup
		for i, sch := range schs {
			wg.Go(func() {
				n, err := sch.RunDue(ctx, c.now())
				if err != nil {
					t.Error(err)
				}
				ran[i] = n
			})
		}
		wg.Wait()
		if ran[0]+ran[1] != 1 {
			t.Fatalf("the 03:00 recompute ran %v times", ran)
		}
		last, err := s.LastScheduleRun(ctx)
		if err != nil || last == nil || last.Trigger != recompute.TriggerSchedule || len(last.Results) != 5 {
			t.Fatalf("last run %+v %v", last, err)
		}
		for _, r := range last.Results {
			if r.Error != "" || r.Changed == 0 {
				t.Fatalf("first recompute of %s: %+v", r.Model, r)
			}
		}
		for _, m := range []string{model.LifecycleModel, model.JourneyModel, model.AIPLModel} {
			counts, err := s.StageCounts(ctx, m, 0)
			var sum int64
			for _, n := range counts {
				sum += n
			}
			if err != nil || sum != 120 {
				t.Fatalf("%s placed %d of 120 customers (%v)", m, sum, err)
			}
		}
		if runs, _ := s.RFMRuns(ctx, 1); len(runs) != 1 {
			t.Fatal("no RFM snapshot")
		}
		at3next := at3.Add(24 * time.Hour)
		if st := jobState(t, s, at3next); st != store.JobPending {
			t.Fatalf("the next day's recompute is %s", st)
		}

		// The next day over unchanged data: the stage models change nothing.
		c.set(at3next.Add(time.Minute))
		events := countRows(t, s, "events")
		if n, _ := schs[1].RunDue(ctx, c.now()); n != 1 {
			t.Fatalf("ran %d jobs on day two", n)
		}
		last, _ = s.LastScheduleRun(ctx)
		for _, r := range last.Results {
			if r.Error != "" || (r.Model != model.RFMModel && r.Changed != 0) {
				t.Fatalf("re-run over unchanged data: %+v", r)
			}
		}
		if countRows(t, s, "events") != events {
			t.Fatal("re-run over unchanged data stored events")
		}

		// The operators move the schedule to 04:30 and recompute only the journey: the queued
		// 03:00 firing is skipped, the 04:30 one runs.
		sched := model.ScheduleConfig{Enabled: true, Cron: "30 4 * * *", Timezone: "Asia/Shanghai", Models: []string{model.JourneyModel}}
		got, err := svcs[0].Set(ctx, sched, c.now())
		if err != nil || got.NextRun == nil || !got.NextRun.Equal(time.Date(2026, 11, 3, 4, 30, 0, 0, sh)) || !slices.Equal(got.Effective, []string{"journey"}) {
			t.Fatalf("set schedule: %+v %v", got, err)
		}
		c.set(time.Date(2026, 11, 3, 4, 31, 0, 0, sh))
		if n, _ := schs[0].RunDue(ctx, c.now()); n != 1 {
			t.Fatalf("04:30 ran %d jobs", n)
		}
		before, _ := s.LastScheduleRun(ctx)
		if len(before.Results) != 1 || before.Results[0].Model != model.JourneyModel {
			t.Fatalf("04:30 run %+v", before)
		}
		c.set(at3next.Add(24*time.Hour + time.Minute)) // 11-04 03:01: the stale 03:00 job is due
		if _, err := schs[0].RunDue(ctx, c.now()); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.LastScheduleRun(ctx); !after.StartedAt.Equal(before.StartedAt) {
			t.Fatal("the firing the schedule no longer has ran")
		}
		if st := jobState(t, s, at3next.Add(24*time.Hour)); st != store.JobDone {
			t.Fatalf("the stale firing is %s", st)
		}
		if st := jobState(t, s, time.Date(2026, 11, 4, 4, 30, 0, 0, sh)); st != store.JobPending {
			t.Fatalf("the 04:30 firing is %s", st)
		}

		// siyu was down for days: the missed 04:30 firing runs once, and the next one is
		// queued after now, not for each missed day.
		c.set(time.Date(2026, 11, 7, 9, 0, 0, 0, sh))
		if n, _ := schs[0].RunDue(ctx, c.now()); n != 1 {
			t.Fatalf("catch-up ran %d jobs", n)
		}
		last, _ = s.LastScheduleRun(ctx)
		if len(last.Results) != 1 || last.Results[0].Model != model.JourneyModel || !last.StartedAt.Equal(c.now()) {
			t.Fatalf("catch-up run %+v", last)
		}
		if st := jobState(t, s, time.Date(2026, 11, 8, 4, 30, 0, 0, sh)); st != store.JobPending {
			t.Fatalf("the next firing after the catch-up is %s", st)
		}
		if st := jobState(t, s, time.Date(2026, 11, 5, 4, 30, 0, 0, sh)); st != "absent" {
			t.Fatalf("a missed firing was queued: %s", st)
		}

		// On demand: AIPL alone, now.
		if _, err := svcs[1].RunNow(ctx, []string{"churn"}, c.now()); err == nil {
			t.Fatal("an unknown model was accepted")
		}
		if _, err := svcs[1].RunNow(ctx, []string{model.AIPLModel}, c.now()); err != nil {
			t.Fatal(err)
		}
		if n, _ := schs[1].RunDue(ctx, c.now()); n != 1 {
			t.Fatalf("manual recompute ran %d jobs", n)
		}
		last, _ = s.LastScheduleRun(ctx)
		if last.Trigger != recompute.TriggerManual || len(last.Results) != 1 || last.Results[0].Model != model.AIPLModel {
			t.Fatalf("manual run %+v", last)
		}

		// Turned off: nothing is queued.
		sched.Enabled = false
		if got, err := svcs[0].Set(ctx, sched, c.now()); err != nil || got.NextRun != nil {
			t.Fatalf("off: %+v %v", got, err)
		}
	})
}

// A model registered beside the standard ones runs with them.
func TestRegisteredModelRuns(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, segment.Shanghai)}
	s.SetClock(c.now)
	svc := recompute.New(s, sqlMembers(s, c), quiet)
	var got time.Time
	svc.Registry.Register(model.Recomputer{Name: "churn", Run: func(_ context.Context, now time.Time) (int, error) {
		got = now
		return 3, nil
	}})
	sch := scheduler.New(s, "a", quiet)
	svc.Register(sch)
	if _, err := svc.RunNow(ctx, []string{"churn"}, c.now()); err != nil {
		t.Fatal(err)
	}
	if _, err := sch.RunDue(ctx, c.now()); err != nil {
		t.Fatal(err)
	}
	last, _ := s.LastScheduleRun(ctx)
	if !got.Equal(c.now()) || len(last.Results) != 1 || last.Results[0].Changed != 3 {
		t.Fatalf("churn ran at %v: %+v", got, last)
	}
}

// TestEngineAgreesWithSQL places the same customers with trees resolved by the audience
// engine and by SQL: the stage models do not depend on which evaluator answered.
func TestEngineAgreesWithSQL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := &clock{t: time.Date(2026, 11, 2, 12, 0, 0, 0, segment.Shanghai)}
		s.SetClock(c.now)
		load(t, s, rand.New(rand.NewPCG(8, 9)), 300, c.now())
		e := audience.New(s, audience.Options{Now: c.now, Fallback: audience.SQLFallback{Store: s}, Log: quiet})
		if err := e.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		engine := func(ctx context.Context, tree *segment.Node) ([]int64, error) {
			sch, err := s.SegmentSchema(ctx)
			if err != nil {
				return nil, err
			}
			b, err := e.Evaluate(ctx, tree, sch.SegmentTree)
			if err != nil {
				return nil, err
			}
			out := make([]int64, 0, b.GetCardinality())
			for it := b.Iterator(); it.HasNext(); {
				out = append(out, int64(it.Next()))
			}
			return out, nil
		}
		aipl := model.DefaultAIPLConfig()
		journey := model.DefaultJourneyConfig()
		for _, plan := range []model.StagePlan{aipl.Plan(), journey.Plan()} {
			for i, r := range plan.Rules {
				a, err := engine(ctx, r.Tree)
				if err != nil {
					t.Fatal(err)
				}
				b, err := sqlMembers(s, c)(ctx, r.Tree)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(a, b) {
					t.Errorf("%s stage %d (%s): engine %d members, SQL %d", plan.Model, i, r.Name, len(a), len(b))
				}
				if len(a) == 0 || len(a) == 300 {
					t.Errorf("%s stage %s selects %d of 300: the data does not test it", plan.Model, r.Name, len(a))
				}
			}
		}
	})
}

func countRows(t *testing.T, s *store.Store, table string) int64 {
	t.Helper()
	var n int64
	if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkStageModels times journey and AIPL over 100,000 customers (SQLite, the audience
// engine resolving the trees, as siyu serve does): the first placement of everyone once,
// reported as first_run_s, then re-runs over unchanged data (the daily case), which read
// everything and write nothing.
func BenchmarkStageModels(b *testing.B) {
	const n = 100_000
	s := storetest.Open(b, store.SQLite)
	c := &clock{t: time.Date(2026, 11, 2, 3, 0, 0, 0, segment.Shanghai)}
	s.SetClock(c.now)
	load(b, s, rand.New(rand.NewPCG(1, 1)), n, c.now())
	e := audience.New(s, audience.Options{Now: c.now, Fallback: audience.SQLFallback{Store: s}, Log: quiet})
	if err := e.Rebuild(ctx, nil); err != nil {
		b.Fatal(err)
	}
	members := func(ctx context.Context, tree *segment.Node) ([]int64, error) {
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			return nil, err
		}
		bm, err := e.Evaluate(ctx, tree, sch.SegmentTree)
		if err != nil {
			return nil, err
		}
		out := make([]int64, 0, bm.GetCardinality())
		for it := bm.Iterator(); it.HasNext(); {
			out = append(out, int64(it.Next()))
		}
		return out, nil
	}
	start := time.Now()
	for _, run := range []func(context.Context, *store.Store, model.Members, time.Time) (*model.StageRun, error){recompute.RunJourney, recompute.RunAIPL} {
		if r, err := run(ctx, s, members, c.now()); err != nil || r.Changed != n {
			b.Fatalf("first run: %+v %v", r, err)
		}
	}
	first := time.Since(start)
	// A day later a third of the customers move (a window passes): flows and time in stage
	// over the history, as the API reads them.
	c.set(c.now().Add(24 * time.Hour))
	if _, err := s.DB().ExecContext(ctx, `UPDATE customer_stages SET stage = 'x' WHERE model = 'aipl' AND customer_id % 3 = 0`); err != nil {
		b.Fatal(err)
	}
	if r, err := recompute.RunAIPL(ctx, s, members, c.now()); err != nil || r.Changed == 0 {
		b.Fatalf("moving run: %+v %v", r, err)
	}
	start = time.Now()
	from := c.now().Add(-48 * time.Hour)
	if _, _, err := s.StageFlows(ctx, model.AIPLModel, from, c.now().Add(time.Hour), staff.CustomerScope{}); err != nil {
		b.Fatal(err)
	}
	flows := time.Since(start)
	start = time.Now()
	if _, err := s.StageDurations(ctx, model.AIPLModel, model.AIPLStages, staff.CustomerScope{}, c.now()); err != nil {
		b.Fatal(err)
	}
	durations := time.Since(start)
	if _, err := recompute.RunJourney(ctx, s, members, c.now()); err != nil { // windows moved a day
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, run := range []func(context.Context, *store.Store, model.Members, time.Time) (*model.StageRun, error){recompute.RunJourney, recompute.RunAIPL} {
			if r, err := run(ctx, s, members, c.now()); err != nil || r.Changed != 0 {
				b.Fatalf("re-run: %+v %v", r, err)
			}
		}
	}
	b.ReportMetric(first.Seconds(), "first_run_s")
	b.ReportMetric(flows.Seconds(), "aipl_flows_s")
	b.ReportMetric(durations.Seconds(), "aipl_durations_s")
}
