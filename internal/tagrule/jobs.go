package tagrule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Job states.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// JobStatus is where a back-fill job stands.
type JobStatus struct {
	ID         int64     `json:"id"`
	RuleID     int64     `json:"rule_id"`
	State      string    `json:"state"` // running, done or failed
	Done       int64     `json:"done"`  // events (event rule) or customers (condition rule) gone through
	Total      int64     `json:"total"` // how many there are; 0 while unknown
	Added      int       `json:"added"`
	Removed    int       `json:"removed"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// ErrJobRunning refuses a second back-fill of a rule while one runs.
var ErrJobRunning = errors.New("a back-fill of this tag rule is already running")

// Jobs runs back-fills in the background, at most one per rule at a time, and remembers the
// last job of each rule in memory (a restart forgets them; an interrupted event back-fill
// resumes from its stored cursor when started again). Progress also goes to the log.
type Jobs struct {
	r   *Runner
	log *slog.Logger

	mu     sync.Mutex
	nextID int64
	byRule map[int64]*job
	wg     sync.WaitGroup
}

type job struct {
	status JobStatus
	p      *progress.Reporter
	total  func() int64
}

// NewJobs returns a job runner over r, logging to log (nil: slog.Default()).
func NewJobs(r *Runner, log *slog.Logger) *Jobs {
	if log == nil {
		log = slog.Default()
	}
	return &Jobs{r: r, log: log, byRule: map[int64]*job{}}
}

// Start begins a back-fill of a rule (Runner.Backfill: an event rule over its past events, a
// condition rule reconciled with the runner's Members) and returns at once. ctx bounds the
// job, not the call. It fails with store.ErrNotFound for an unknown rule and ErrJobRunning
// when the rule's last job still runs.
func (j *Jobs) Start(ctx context.Context, ruleID int64) (JobStatus, error) {
	rule, err := j.r.s.TagRule(ctx, ruleID)
	if err != nil {
		return JobStatus{}, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if old := j.byRule[ruleID]; old != nil && old.status.State == JobRunning {
		return j.snapshot(old), fmt.Errorf("%w (job %d)", ErrJobRunning, old.status.ID)
	}
	j.nextID++
	label := fmt.Sprintf("tag rule %d back-fill (job %d)", ruleID, j.nextID)
	jb := &job{
		status: JobStatus{ID: j.nextID, RuleID: ruleID, State: JobRunning, StartedAt: time.Now()},
		p:      progress.New(label, 0, io.Discard, j.log),
	}
	var total int64
	var totalMu sync.Mutex
	setTotal := func(n int64) {
		totalMu.Lock()
		total = n
		totalMu.Unlock()
		jb.p.SetTotal(n)
	}
	jb.total = func() int64 {
		totalMu.Lock()
		defer totalMu.Unlock()
		return total
	}
	j.byRule[ruleID] = jb
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		added, removed, err := j.run(context.WithoutCancel(ctx), rule, jb.p, setTotal)
		jb.p.Done()
		j.mu.Lock()
		defer j.mu.Unlock()
		jb.status.Added, jb.status.Removed, jb.status.FinishedAt = added, removed, time.Now()
		if err != nil {
			jb.status.State, jb.status.Error = JobFailed, err.Error()
			j.log.Error("tag rule back-fill failed", "rule", ruleID, "job", jb.status.ID, "err", err)
			return
		}
		jb.status.State = JobDone
		j.log.Info("tag rule back-fill done", "rule", ruleID, "job", jb.status.ID, "added", added, "removed", removed)
	}()
	return j.snapshot(jb), nil
}

// run back-fills rule, telling setTotal the size of the work as soon as it is known.
func (j *Jobs) run(ctx context.Context, rule *tag.Rule, p *progress.Reporter, setTotal func(int64)) (added, removed int, err error) {
	switch rule.Trigger.Kind {
	case tag.OnEvent:
		cur, _, err := j.r.s.TagRuleBackfillCursor(ctx, rule.ID)
		if err != nil {
			return 0, 0, err
		}
		n, err := j.r.s.CountEventsNamed(ctx, rule.Trigger.Event.Name, cur)
		if err != nil {
			return 0, 0, err
		}
		setTotal(n)
		return j.r.Backfill(ctx, rule.ID, p)
	case tag.OnCondition:
		if j.r.members == nil {
			return 0, 0, fmt.Errorf("back-fill tag rule %d: no way to resolve its condition to customers", rule.ID)
		}
		members := func(tree *segment.Node) ([]int64, error) {
			ids, err := j.r.members(tree)
			setTotal(int64(len(ids)))
			return ids, err
		}
		added, removed, err = j.r.Reconcile(ctx, rule.ID, members, p)
		if err != nil {
			return added, removed, err
		}
		err = j.r.s.InTx(ctx, func(tx *store.Tx) error { return tx.FinishTagRuleBackfill(rule.ID) })
		return added, removed, err
	}
	return 0, 0, fmt.Errorf("back-fill tag rule %d: %w: %q", rule.ID, ErrWrongKind, rule.Trigger.Kind)
}

// Status returns the last job of a rule; ok is false when it has none.
func (j *Jobs) Status(ruleID int64) (JobStatus, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	jb := j.byRule[ruleID]
	if jb == nil {
		return JobStatus{}, false
	}
	return j.snapshot(jb), true
}

// Wait blocks until every job started so far has ended.
func (j *Jobs) Wait() { j.wg.Wait() }

func (j *Jobs) snapshot(jb *job) JobStatus {
	s := jb.status
	s.Done, s.Total = jb.p.Count(), jb.total()
	if s.State == JobDone && s.Total < s.Done {
		s.Total = s.Done
	}
	return s
}
