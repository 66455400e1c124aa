package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// The change feed carries what each commit changed to the other `siyu serve` processes on
// the same PostgreSQL database, so that every instance's in-memory audience engine (and any
// other subscriber) stays in step with writes made elsewhere — by another instance, or by
// `siyu import` run beside them.
//
// On PostgreSQL every transaction that changed something appends one row to change_feed in
// the same transaction (so a row exists exactly when its writes committed), carrying the
// Changes as JSON and the writing process's origin. FollowChangeFeed polls the table and
// publishes other origins' rows to this process's subscribers, each row once. SQLite is one
// process by design and writes no feed.
//
// Row ids come from a sequence, and a transaction that took a smaller id may commit after one
// that took a larger id. The follower therefore keeps the ids it has applied above a floor and
// only moves the floor past rows older than FeedSettle: a row is inserted just before its
// transaction commits, so once a later row is that old every earlier one has committed or
// never will. Rows older than FeedRetention are deleted by any follower.

// Feed timings.
const (
	FeedSettle    = 30 * time.Second
	FeedRetention = 15 * time.Minute
	feedBatch     = 2000
)

// writeFeed appends the transaction's changes to the feed (PostgreSQL only).
func (tx *Tx) writeFeed() error {
	if !tx.s.feedOn() || tx.changes.empty() {
		return nil
	}
	b, err := json.Marshal(&tx.changes)
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	if _, err := tx.exec(`INSERT INTO change_feed (origin, at, payload) VALUES (?, ?, ?)`, tx.s.origin, time.Now().UnixMilli(), string(b)); err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	return nil
}

// newOrigin names a process: host, pid and a random part (pids repeat across restarts).
func newOrigin() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// feedOn reports whether commits write to the change feed.
func (s *Store) feedOn() bool { return s.engine == Postgres && !s.noFeed.Load() }

// PauseChangeFeed stops this process's commits from writing to the change feed until resume
// is called: for bulk loads into a database nobody serves yet (demo generation), which would
// otherwise carry every row they write through the feed.
func (s *Store) PauseChangeFeed() (resume func()) {
	s.noFeed.Store(true)
	return func() { s.noFeed.Store(false) }
}

// Origin names this process in the change feed.
func (s *Store) Origin() string { return s.origin }

// ChangeFeed follows the change feed of other processes. Make one with NewChangeFeed before
// the audience engine's first rebuild, so that nothing committed after the rebuild read the
// store is missed (changes that arrive during a rebuild are queued by the engine).
type ChangeFeed struct {
	s       *Store
	floor   int64          // every row with an id up to floor has been applied or never will be
	applied map[int64]bool // rows above floor already applied
	now     func() time.Time
	pruned  time.Time
}

// NewChangeFeed starts following at the current end of the feed. On SQLite it returns a feed
// that never has anything.
func (s *Store) NewChangeFeed(ctx context.Context) (*ChangeFeed, error) {
	f := &ChangeFeed{s: s, applied: map[int64]bool{}, now: time.Now}
	if s.engine != Postgres {
		return f, nil
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM change_feed`).Scan(&f.floor); err != nil {
		return nil, fmt.Errorf("change feed: %w", err)
	}
	return f, nil
}

// Poll publishes the rows other processes committed since the last poll to this process's
// subscribers, in id order, each once, and reports how many it published.
func (f *ChangeFeed) Poll(ctx context.Context) (int, error) {
	if f.s.engine != Postgres {
		return 0, nil
	}
	now := f.now()
	settled := now.Add(-FeedSettle).UnixMilli()
	published := 0
	for {
		rows, err := f.s.db.QueryContext(ctx, f.s.q(`SELECT id, origin, at, payload FROM change_feed WHERE id > ? ORDER BY id LIMIT ?`), f.floor, feedBatch)
		if err != nil {
			return published, fmt.Errorf("change feed: %w", err)
		}
		type feedRow struct {
			id, at  int64
			origin  string
			payload []byte
		}
		var batch []feedRow
		for rows.Next() {
			var r feedRow
			if err := rows.Scan(&r.id, &r.origin, &r.at, &r.payload); err != nil {
				rows.Close()
				return published, fmt.Errorf("change feed: %w", err)
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return published, fmt.Errorf("change feed: %w", err)
		}
		floor, gap := f.floor, false
		for _, r := range batch {
			if r.id != floor+1 {
				gap = true // an id below r.id may still commit
			}
			if !f.applied[r.id] {
				f.applied[r.id] = true
				if r.origin != f.s.origin {
					var c Changes
					if err := json.Unmarshal(r.payload, &c); err != nil {
						slog.Error("change feed: undecodable row; skipped", "id", r.id, "err", err)
					} else {
						f.s.publish(&c)
						published++
					}
				}
			}
			// The floor follows contiguous ids, and jumps gaps once the row after the gap is
			// old enough that nothing before it can still commit.
			if !gap || r.at < settled {
				floor, gap = r.id, false
			}
		}
		for id := range f.applied {
			if id <= floor {
				delete(f.applied, id)
			}
		}
		f.floor = floor
		if len(batch) < feedBatch {
			break
		}
	}
	if now.Sub(f.pruned) > time.Minute {
		f.pruned = now
		if _, err := f.s.db.ExecContext(ctx, f.s.q(`DELETE FROM change_feed WHERE at < ?`), now.Add(-FeedRetention).UnixMilli()); err != nil {
			return published, fmt.Errorf("change feed: prune: %w", err)
		}
	}
	return published, nil
}

// Follow polls every interval until ctx ends.
func (f *ChangeFeed) Follow(ctx context.Context, every time.Duration, log *slog.Logger) {
	if f.s.engine != Postgres {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := f.Poll(ctx); err != nil && ctx.Err() == nil {
				log.Warn("change feed", "err", err)
			}
		}
	}
}
