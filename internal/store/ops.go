package store

import (
	"context"
	"fmt"
)

// OpsStats is what an operator watches on a running installation: the job queue, touches by
// state, the WeCom callback inbox and the change feed (see /metrics).
type OpsStats struct {
	// Jobs counts jobs by kind and state; JobsDue the pending ones whose time has come (the
	// queue's depth: work waiting for a worker).
	Jobs    map[[2]string]int64
	JobsDue int64
	// Touches counts touches by state (planned, due, done, sent, failed, …).
	Touches map[string]int64
	// WeComInbox counts WeCom callbacks by state (pending ones are not yet applied).
	WeComInbox map[string]int64
	// FeedRows is the number of change-feed rows kept (PostgreSQL).
	FeedRows int64
}

// OpsStats reads the counts behind the operational metrics. Each is one GROUP BY over a table
// that stays modest (jobs and feed rows are pruned or settled; touches grow with use): the
// metrics handler caches the result rather than running it on every scrape.
func (s *Store) OpsStats(ctx context.Context) (*OpsStats, error) {
	st := &OpsStats{Jobs: map[[2]string]int64{}, Touches: map[string]int64{}, WeComInbox: map[string]int64{}}
	type pair struct {
		a, b string
		n    int64
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kind, state, COUNT(*) FROM jobs GROUP BY kind, state`)
	jobs, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (pair, error) {
		var p pair
		return p, sc.Scan(&p.a, &p.b, &p.n)
	})
	if err != nil {
		return nil, fmt.Errorf("ops stats: jobs: %w", err)
	}
	for _, p := range jobs {
		st.Jobs[[2]string{p.a, p.b}] = p.n
	}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM jobs WHERE state = ? AND run_at <= ?`), JobPending, ms(s.now())).Scan(&st.JobsDue); err != nil {
		return nil, fmt.Errorf("ops stats: due jobs: %w", err)
	}
	for table, into := range map[string]map[string]int64{"touches": st.Touches, "wecom_inbox": st.WeComInbox} {
		rs, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM `+table+` GROUP BY state`)
		counts, err := collect(rs, err, func(sc interface{ Scan(...any) error }) (pair, error) {
			var p pair
			return p, sc.Scan(&p.a, &p.n)
		})
		if err != nil {
			return nil, fmt.Errorf("ops stats: %s: %w", table, err)
		}
		for _, p := range counts {
			into[p.a] = p.n
		}
	}
	if s.engine == Postgres {
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM change_feed`).Scan(&st.FeedRows); err != nil {
			return nil, fmt.Errorf("ops stats: change feed: %w", err)
		}
	}
	return st, nil
}
