package web

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/siyu-scrm/siyu/internal/store"
)

// readyz answers whether this instance should get traffic: the database answers, every
// migration this binary knows is applied, and the audience engine has finished loading (until
// then segment counts fall back to slow SQL). 200 when all hold, 503 naming what does not.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	fail := func(name, why string) { checks[name], ready = why, false }
	if err := s.Store.DB().PingContext(ctx); err != nil {
		fail("database", "unreachable")
	} else {
		checks["database"] = "ok"
		if v, err := s.Store.Version(ctx); err != nil {
			fail("migrations", "unreadable")
		} else if want := store.SchemaVersion(); v < want {
			fail("migrations", "behind: run siyu migrate")
		} else {
			checks["migrations"] = "ok"
		}
	}
	switch {
	case s.Audience == nil:
		checks["audience"] = "off"
	case s.Audience.Ready():
		checks["audience"] = "ok"
	default:
		fail("audience", "loading")
	}
	code, status := http.StatusOK, "ready"
	if !ready {
		code, status = http.StatusServiceUnavailable, "not ready"
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks, "version": s.Version})
}

// opsCollector exports the queue, touches, WeCom inbox, change feed and audience engine as
// gauges. The counts come from the database, at most every opsTTL, so a busy scraper costs
// one set of GROUP BY queries per interval.
type opsCollector struct {
	s    *Server
	mu   sync.Mutex
	at   time.Time
	last *store.OpsStats

	jobs, jobsDue, touches, inbox, feed, audReady, audCustomers *prometheus.Desc
}

const opsTTL = 15 * time.Second

func newOpsCollector(s *Server) *opsCollector {
	return &opsCollector{
		s:            s,
		jobs:         prometheus.NewDesc("siyu_jobs", "Durable jobs by kind and state.", []string{"kind", "state"}, nil),
		jobsDue:      prometheus.NewDesc("siyu_jobs_due", "Pending jobs whose time has come: the scheduler queue's depth.", nil, nil),
		touches:      prometheus.NewDesc("siyu_touches", "SOP and broadcast touches by state.", []string{"state"}, nil),
		inbox:        prometheus.NewDesc("siyu_wecom_inbox", "WeCom callbacks by state (pending: not yet applied).", []string{"state"}, nil),
		feed:         prometheus.NewDesc("siyu_change_feed_rows", "Change-feed rows kept for other instances (PostgreSQL).", nil, nil),
		audReady:     prometheus.NewDesc("siyu_audience_ready", "1 when the in-memory audience engine has loaded.", nil, nil),
		audCustomers: prometheus.NewDesc("siyu_audience_customers", "Customers held by the audience engine.", nil, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.jobsDue, c.touches, c.inbox, c.feed, c.audReady, c.audCustomers} {
		ch <- d
	}
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	if e := c.s.Audience; e != nil {
		ready := 0.0
		if e.Ready() {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(c.audReady, prometheus.GaugeValue, ready)
		ch <- prometheus.MustNewConstMetric(c.audCustomers, prometheus.GaugeValue, float64(e.Size()))
	}
	st := c.stats()
	if st == nil {
		return
	}
	for k, n := range st.Jobs {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(c.jobsDue, prometheus.GaugeValue, float64(st.JobsDue))
	for state, n := range st.Touches {
		ch <- prometheus.MustNewConstMetric(c.touches, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range st.WeComInbox {
		ch <- prometheus.MustNewConstMetric(c.inbox, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(c.feed, prometheus.GaugeValue, float64(st.FeedRows))
}

// stats returns the cached counts, refreshed when older than opsTTL; nil when the database
// cannot be read (the scrape still gets the process and HTTP metrics).
func (c *opsCollector) stats() *store.OpsStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && time.Since(c.at) < opsTTL {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.s.Store.OpsStats(ctx)
	if err != nil {
		c.s.Log.Warn("metrics: reading queue and touch counts", "err", err)
		return c.last
	}
	c.last, c.at = st, time.Now()
	return st
}
