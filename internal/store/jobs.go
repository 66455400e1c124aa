package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Job states.
const (
	JobPending = "pending" // waiting for run_at
	JobRunning = "running" // claimed: leased to lease_owner until lease_until
	JobDone    = "done"
	JobFailed  = "failed" // out of attempts, or failed for good
)

// Job is one durable unit of work of the scheduler (internal/scheduler). Key makes enqueueing
// idempotent: a second job with the same key is not added.
type Job struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	Key         string          `json:"key"`
	RunAt       time.Time       `json:"run_at"`
	Payload     json.RawMessage `json:"payload"`
	State       string          `json:"state"`
	Attempts    int             `json:"attempts"`
	MaxAttempts int             `json:"max_attempts"`
	LeaseOwner  string          `json:"lease_owner"`
	LeaseUntil  time.Time       `json:"lease_until"`
	LastError   string          `json:"last_error"`
}

// DefaultMaxAttempts is how often a job runs before it fails for good, unless it says otherwise.
const DefaultMaxAttempts = 8

const jobCols = `id, kind, key, run_at, payload, state, attempts, max_attempts, lease_owner, lease_until, last_error`

func scanJob(sc interface{ Scan(...any) error }) (*Job, error) {
	var (
		j             Job
		runAt, leased int64
		payload       string
	)
	if err := sc.Scan(&j.ID, &j.Kind, &j.Key, &runAt, &payload, &j.State, &j.Attempts, &j.MaxAttempts, &j.LeaseOwner, &leased, &j.LastError); err != nil {
		return nil, err
	}
	j.RunAt, j.LeaseUntil, j.Payload = fromMS(runAt), fromMS(leased), json.RawMessage(payload)
	return &j, nil
}

// EnqueueJob adds a pending job in tx unless one with its key exists (whatever its state), and
// reports whether it added it. Writers enqueue in the transaction that makes the job necessary,
// so the job exists exactly when their data does.
func (tx *Tx) EnqueueJob(j *Job) (bool, error) {
	if j.Kind == "" || j.Key == "" {
		return false, errors.New("enqueue job: kind and key are required")
	}
	payload := string(j.Payload)
	if payload == "" {
		payload = "{}"
	}
	maxAttempts := j.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	now := ms(tx.Now())
	res, err := tx.exec(`INSERT INTO jobs (kind, key, run_at, payload, state, max_attempts, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
		j.Kind, j.Key, ms(j.RunAt), payload, JobPending, maxAttempts, now, now)
	if err != nil {
		return false, fmt.Errorf("enqueue job %s: %w", j.Key, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// EnqueueJob adds a job in a transaction of its own (see Tx.EnqueueJob).
func (s *Store) EnqueueJob(ctx context.Context, j *Job) (added bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		added, err = tx.EnqueueJob(j)
		return err
	})
	return added, err
}

// ClaimJobs leases up to limit jobs due at now to owner until now+lease and returns them,
// attempts counted: pending jobs whose run_at has come, and running jobs whose lease has
// expired (their runner crashed or hung). PostgreSQL skips rows another instance is claiming
// (FOR UPDATE SKIP LOCKED), so instances share the work; SQLite claims under its write lock.
// Either way a job is leased to one owner at a time.
func (s *Store) ClaimJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Job, error) {
	lock := ""
	if s.engine == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var jobs []*Job
	err := s.InTx(ctx, func(tx *Tx) error {
		rows, err := tx.query(`UPDATE jobs SET state = ?, lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
			WHERE id IN (SELECT id FROM jobs WHERE (state = ? AND run_at <= ?) OR (state = ? AND lease_until <= ?)
				ORDER BY run_at, id LIMIT ?`+lock+`)
			RETURNING `+jobCols, JobRunning, owner, ms(now.Add(lease)), ms(now), JobPending, ms(now), JobRunning, ms(now), limit)
		jobs, err = collect(rows, err, scanJob)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", err)
	}
	return jobs, nil
}

// ErrLeaseLost is returned when a job is finished by an owner whose lease has gone (it expired
// and another owner claimed the job).
var ErrLeaseLost = errors.New("job lease lost")

// FinishJob marks a job leased to owner done.
func (s *Store) FinishJob(ctx context.Context, id int64, owner string) error {
	return s.settleJob(ctx, `UPDATE jobs SET state = ?, lease_owner = '', lease_until = 0, last_error = '', updated_at = ?
		WHERE id = ? AND state = ? AND lease_owner = ?`, JobDone, ms(s.now()), id, JobRunning, owner)
}

// RetryJob puts a job leased to owner back to pending at runAt, recording why it failed.
func (s *Store) RetryJob(ctx context.Context, id int64, owner, why string, runAt time.Time) error {
	return s.settleJob(ctx, `UPDATE jobs SET state = ?, run_at = ?, lease_owner = '', lease_until = 0, last_error = ?, updated_at = ?
		WHERE id = ? AND state = ? AND lease_owner = ?`, JobPending, ms(runAt), why, ms(s.now()), id, JobRunning, owner)
}

// FailJob marks a job leased to owner failed for good.
func (s *Store) FailJob(ctx context.Context, id int64, owner, why string) error {
	return s.settleJob(ctx, `UPDATE jobs SET state = ?, lease_owner = '', lease_until = 0, last_error = ?, updated_at = ?
		WHERE id = ? AND state = ? AND lease_owner = ?`, JobFailed, why, ms(s.now()), id, JobRunning, owner)
}

func (s *Store) settleJob(ctx context.Context, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("settle job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// JobByKey returns the job with key.
func (s *Store) JobByKey(ctx context.Context, key string) (*Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, s.q(`SELECT `+jobCols+` FROM jobs WHERE key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return j, err
}

// JobCounts counts jobs by state.
func (s *Store) JobCounts(ctx context.Context) (map[string]int64, error) {
	type kv struct {
		state string
		n     int64
	}
	rs, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM jobs GROUP BY state`)
	rows, err := collect(rs, err, func(sc interface{ Scan(...any) error }) (kv, error) {
		var r kv
		return r, sc.Scan(&r.state, &r.n)
	})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.state] = r.n
	}
	return out, nil
}

// PurgeJobs deletes jobs done before before; failed jobs stay for operators to read. A key
// purged can be enqueued again, so callers purge only what can no longer be enqueued twice
// harmfully (touch jobs are guarded by the touch's own state).
func (s *Store) PurgeJobs(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM jobs WHERE state = ? AND updated_at < ?`), JobDone, ms(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
