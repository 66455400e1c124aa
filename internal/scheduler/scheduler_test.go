package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func enqueue(t *testing.T, s *store.Store, kind, key string, at time.Time) {
	t.Helper()
	if _, err := s.EnqueueJob(context.Background(), &store.Job{Kind: kind, Key: key, RunAt: at, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
}

func jobState(t *testing.T, s *store.Store, key string) *store.Job {
	t.Helper()
	j, err := s.JobByKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunDueRunsOnlyDueJobsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sch := scheduler.New(s, "a", nil)
		var ran []string
		sch.Handle("k", func(_ context.Context, j *store.Job) error { ran = append(ran, j.Key); return nil })
		enqueue(t, s, "k", "first", t0)
		enqueue(t, s, "k", "later", t0.Add(time.Hour))
		if added, _ := s.EnqueueJob(ctx, &store.Job{Kind: "k", Key: "first", RunAt: t0}); added {
			t.Fatal("a second job with the same key was added")
		}
		if n, err := sch.RunDue(ctx, t0); err != nil || n != 1 {
			t.Fatalf("ran %d, %v; want 1", n, err)
		}
		if n, _ := sch.RunDue(ctx, t0.Add(30*time.Minute)); n != 0 {
			t.Fatalf("ran %d before anything was due", n)
		}
		if n, _ := sch.RunDue(ctx, t0.Add(time.Hour)); n != 1 {
			t.Fatalf("ran %d at the later job's time", n)
		}
		if fmt.Sprint(ran) != "[first later]" {
			t.Fatalf("ran %v", ran)
		}
		if j := jobState(t, s, "first"); j.State != store.JobDone || j.Attempts != 1 {
			t.Fatalf("first: %+v", j)
		}
	})
}

func TestRetryWithBackoffThenFail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sch := scheduler.New(s, "a", nil)
		sch.Backoff = func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }
		calls := 0
		sch.Handle("flaky", func(context.Context, *store.Job) error { calls++; return errors.New("gateway down") })
		enqueue(t, s, "flaky", "f", t0)
		sch.RunDue(ctx, t0)
		j := jobState(t, s, "f")
		if j.State != store.JobPending || !j.RunAt.Equal(t0.Add(time.Minute)) || j.LastError != "gateway down" {
			t.Fatalf("after one failure: %+v", j)
		}
		if n, _ := sch.RunDue(ctx, t0.Add(59*time.Second)); n != 0 {
			t.Fatal("retried before the backoff ended")
		}
		sch.RunDue(ctx, t0.Add(time.Minute))                    // attempt 2, next at +2 min
		sch.RunDue(ctx, t0.Add(3*time.Minute))                  // attempt 3 of 3: fails for good
		if n, _ := sch.RunDue(ctx, t0.Add(time.Hour)); n != 0 { // nothing left
			t.Fatalf("ran %d after the job failed", n)
		}
		j = jobState(t, s, "f")
		if calls != 3 || j.State != store.JobFailed || j.Attempts != 3 {
			t.Fatalf("calls %d, job %+v", calls, j)
		}

		sch.Handle("bad", func(context.Context, *store.Job) error { return scheduler.Permanent(errors.New("no such touch")) })
		enqueue(t, s, "bad", "b", t0)
		sch.RunDue(ctx, t0)
		if j := jobState(t, s, "b"); j.State != store.JobFailed || j.Attempts != 1 {
			t.Fatalf("permanent error: %+v", j)
		}
	})
}

func TestExpiredLeaseIsReclaimedAfterCrash(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		enqueue(t, s, "k", "crash", t0)
		// The first runner claims the job and dies holding it (never settles).
		claimed, err := s.ClaimJobs(ctx, "dead", t0, time.Minute, 10)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		sch := scheduler.New(s, "alive", nil)
		sch.Lease = time.Minute
		ran := 0
		sch.Handle("k", func(context.Context, *store.Job) error { ran++; return nil })
		if n, _ := sch.RunDue(ctx, t0.Add(30*time.Second)); n != 0 {
			t.Fatal("claimed a job whose lease is still valid")
		}
		if n, _ := sch.RunDue(ctx, t0.Add(time.Minute)); n != 1 || ran != 1 {
			t.Fatalf("reclaim ran %d", n)
		}
		j := jobState(t, s, "crash")
		if j.State != store.JobDone || j.Attempts != 2 {
			t.Fatalf("job %+v", j)
		}
		// The dead runner coming back cannot settle a job it no longer holds.
		if err := s.FinishJob(ctx, j.ID, "dead"); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("stale finish: %v", err)
		}
	})
}

func TestPanickingHandlerIsRetried(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		sch := scheduler.New(s, "a", nil)
		sch.Handle("p", func(context.Context, *store.Job) error { panic("boom") })
		enqueue(t, s, "p", "p", t0)
		if _, err := sch.RunDue(context.Background(), t0); err != nil {
			t.Fatal(err)
		}
		if j := jobState(t, s, "p"); j.State != store.JobPending || j.LastError != "job panicked: boom" {
			t.Fatalf("job %+v", j)
		}
	})
}

// TestRacingSchedulersRunEachJobOnce runs two schedulers, each with a store connection pool of
// its own (as two instances would), over the same jobs at once.
func TestRacingSchedulersRunEachJobOnce(t *testing.T) {
	for _, eng := range storetest.Engines {
		t.Run(string(eng), func(t *testing.T) {
			ctx := context.Background()
			dsn := storetest.DSN(t, eng)
			open := func() *store.Store {
				s, err := store.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				if _, err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				return s
			}
			a, b := open(), open()
			const jobs = 300
			for i := range jobs {
				enqueue(t, a, "k", fmt.Sprintf("j%d", i), t0)
			}
			var mu sync.Mutex
			runs := map[string]int{}
			var total atomic.Int64
			h := func(_ context.Context, j *store.Job) error {
				mu.Lock()
				runs[j.Key]++
				mu.Unlock()
				total.Add(1)
				return nil
			}
			var wg sync.WaitGroup
			for _, s := range []*store.Store{a, b} {
				sch := scheduler.New(s, "", nil)
				sch.Batch = 7
				sch.Handle("k", h)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := sch.RunDue(ctx, t0); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if total.Load() != jobs || len(runs) != jobs {
				t.Fatalf("ran %d jobs over %d keys, want %d", total.Load(), len(runs), jobs)
			}
			for k, n := range runs {
				if n != 1 {
					t.Fatalf("%s ran %d times", k, n)
				}
			}
		})
	}
}
