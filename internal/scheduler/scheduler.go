// Package scheduler runs durable jobs kept in the database (store.Job): claimed with a lease,
// executed at least once, retried with backoff, re-claimed when a runner dies holding one.
// Handlers make their side effects idempotent (a touch's key, say), which turns
// at-least-once into exactly-once in effect. Time is passed in (RunDue(ctx, now)), so tests
// drive the scheduler with a fake clock and no sleeps; Run is the loop siyu serve starts.
package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Handler runs one job. A nil error finishes it; an error retries it after a backoff until it
// is out of attempts; an error wrapped by Permanent fails it at once.
type Handler func(ctx context.Context, j *store.Job) error

// permanent marks an error not worth retrying.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the job fails without retries.
func Permanent(err error) error { return permanent{err} }

// Scheduler claims and runs due jobs. Several schedulers (in one process or in several
// instances on one PostgreSQL) share the jobs table safely: a job is leased to one at a time.
type Scheduler struct {
	st       *store.Store
	owner    string
	mu       sync.RWMutex
	handlers map[string]Handler
	log      *slog.Logger
	wake     chan struct{}

	// Lease is how long a claimed job belongs to this scheduler (default 5 minutes); a job
	// still running after it may be claimed again by another.
	Lease time.Duration
	// Batch is how many jobs one claim takes (default 100).
	Batch int
	// Backoff is the wait before retry number attempt (1, 2, …); default 10 s doubling up to
	// an hour.
	Backoff func(attempt int) time.Duration
}

// New returns a scheduler over st. owner names it in leases; "" makes a unique name from the
// host name and a random suffix.
func New(st *store.Store, owner string, log *slog.Logger) *Scheduler {
	if owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		owner = host + "-" + hex.EncodeToString(b)
	}
	if log == nil {
		log = slog.Default()
	}
	return &Scheduler{st: st, owner: owner, handlers: map[string]Handler{}, log: log, wake: make(chan struct{}, 1),
		Lease: 5 * time.Minute, Batch: 100, Backoff: DefaultBackoff}
}

// DefaultBackoff waits 10 s before the first retry, doubling up to an hour.
func DefaultBackoff(attempt int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// Owner is the name this scheduler leases jobs under.
func (s *Scheduler) Owner() string { return s.owner }

// Handle registers the handler of a job kind.
func (s *Scheduler) Handle(kind string, h Handler) {
	s.mu.Lock()
	s.handlers[kind] = h
	s.mu.Unlock()
}

// Wake makes Run look for due jobs now instead of at its next tick (after a commit that
// enqueued a job due at once, say).
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunDue claims and runs the jobs due at now, batch after batch, until none is due, and
// returns how many it ran. A job's failure is recorded on the job (retry or failed), not
// returned; only a failure to claim or settle is. Jobs that come due while it runs (retries
// with no backoff, say) are run too, as long as they are due at now.
func (s *Scheduler) RunDue(ctx context.Context, now time.Time) (int, error) {
	ran := 0
	for {
		if err := ctx.Err(); err != nil {
			return ran, err
		}
		jobs, err := s.st.ClaimJobs(ctx, s.owner, now, s.Lease, s.Batch)
		if err != nil {
			return ran, err
		}
		if len(jobs) == 0 {
			return ran, nil
		}
		sort.Slice(jobs, func(i, j int) bool {
			if !jobs[i].RunAt.Equal(jobs[j].RunAt) {
				return jobs[i].RunAt.Before(jobs[j].RunAt)
			}
			return jobs[i].ID < jobs[j].ID
		})
		for _, j := range jobs {
			if err := s.run(ctx, j, now); err != nil {
				return ran, err
			}
			ran++
		}
	}
}

// run executes one claimed job and settles it. Losing the lease meanwhile is logged: the
// new owner settles the job.
func (s *Scheduler) run(ctx context.Context, j *store.Job, now time.Time) error {
	s.mu.RLock()
	h := s.handlers[j.Kind]
	s.mu.RUnlock()
	var err error
	if h == nil {
		err = fmt.Errorf("no handler for job kind %q", j.Kind)
	} else {
		err = safely(ctx, h, j)
	}
	var settle error
	var perm permanent
	switch {
	case err == nil:
		settle = s.st.FinishJob(ctx, j.ID, s.owner)
	case errors.As(err, &perm) || j.Attempts >= j.MaxAttempts:
		s.log.Warn("job failed", "kind", j.Kind, "key", j.Key, "attempts", j.Attempts, "err", err)
		settle = s.st.FailJob(ctx, j.ID, s.owner, err.Error())
	default:
		s.log.Info("job will be retried", "kind", j.Kind, "key", j.Key, "attempts", j.Attempts, "err", err)
		settle = s.st.RetryJob(ctx, j.ID, s.owner, err.Error(), now.Add(s.Backoff(j.Attempts)))
	}
	if errors.Is(settle, store.ErrLeaseLost) {
		s.log.Warn("job lease lost before it was settled", "kind", j.Kind, "key", j.Key)
		return nil
	}
	return settle
}

// safely runs h, turning a panic into an error so one bad job does not stop the loop.
func safely(ctx context.Context, h Handler, j *store.Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("job panicked: %v", r)
		}
	}()
	return h(ctx, j)
}

// Run runs due jobs every interval (and when woken) until ctx ends, with the wall clock.
func (s *Scheduler) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.RunDue(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}
