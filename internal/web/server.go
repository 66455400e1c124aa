// Package web is siyu's HTTP edge: the ingestion API (/v1), the JSON API (/api/v1), the
// operator console (/) and /metrics. Handlers are thin: decode, authorise, call the store or a
// capability service, encode.
package web

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/report"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tagrule"
)

// Server holds what the handlers need.
type Server struct {
	Store *store.Store
	// Audience counts and lists segments in memory; it may still be rebuilding (Ready).
	Audience *audience.Engine
	// TagRules runs tag rules: event rules inside the ingestion transaction, back-fills for
	// the API. Nil makes one whose condition rules resolve through RuleMembers.
	TagRules *tagrule.Runner
	// SOPs defines SOPs, plans event-triggered ones inside the ingestion transaction and
	// serves the task inbox. Nil makes one whose audiences resolve through SOPMembers (its
	// jobs then run only where a scheduler is started: siyu serve).
	SOPs *sop.Service
	// Models recomputes the customer models on the schedule and on demand. Nil makes one
	// whose stage trees resolve through ModelMembers (its jobs then run only where a
	// scheduler is started: siyu serve).
	Models *recompute.Service
	// Reports builds and mails the weekly report. Nil makes one that cannot mail (no SMTP).
	Reports *report.Service
	Log     *slog.Logger
	// SecureCookies marks cookies Secure (set when siyu is served over TLS or behind a proxy
	// that terminates it).
	SecureCookies bool
	// Registry receives siyu's Prometheus metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Version is shown in the console and /healthz.
	Version string
	// Ownership assigns owners, runs the pool and staff transfers. Nil makes one without
	// WeCom (its transfer jobs then run only where a scheduler is started: siyu serve).
	Ownership     *ownership.Service
	ownershipOnce sync.Once
	// BaseURL is the public URL (SIYU_BASE_URL) that survey links are made with; empty: the
	// request's own host.
	BaseURL string
	// Security tunes sessions, rate limits and the trusted proxy (security.go); the zero
	// value is the default.
	Security SecurityConfig

	metrics      *metrics
	limiter      *loginLimiter
	surveyLimits *surveyLimiters
	// publicLimiter limits public pages per client address, ingestLimiter ingestion per write
	// key (nil: no limit).
	publicLimiter, ingestLimiter *keyedLimiter
	// consoleRoutes are the console's mux patterns, for the route-by-role test.
	consoleRoutes []string
	tagJobs       *tagrule.Jobs
}

// Handler builds the router. Every route is authenticated except ingestion (write key),
// sign-in, static assets, health, metrics and the WeCom callback (signature-checked).
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.Registry)
	s.Registry.Register(newOpsCollector(s)) // a registry shared by several servers keeps the first
	s.Security.defaults()
	s.limiter = newLoginLimiter(s.Security.LoginAttempts, time.Minute)
	s.publicLimiter = newKeyedLimiter(s.Security.PublicRate, s.Security.PublicBurst)
	if s.Security.IngestRate > 0 {
		s.ingestLimiter = newKeyedLimiter(s.Security.IngestRate, s.Security.IngestBurst)
	}
	if s.TagRules == nil {
		s.TagRules = tagrule.New(s.Store, s.RuleMembers)
	}
	s.tagJobs = tagrule.NewJobs(s.TagRules, s.Log)
	if s.SOPs == nil {
		s.SOPs = sop.NewService(s.Store, s.SOPMembers, s.Log)
	}
	// Model runs' events (Stage Entered, RFM Class Changed, Tier Changed) reach event tag
	// rules and SOP event triggers inside the run's transaction, as ingested events do.
	s.Store.OnModelEvents(afterStoreAll(s.TagRules.AfterStore(s.Log), s.SOPs.AfterStore(s.Log)))
	s.reports()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	s.routesIngest(mux)
	s.routesAPI(mux)
	s.routesConsole(mux)
	s.routesWeCom(mux)
	s.routesSurveys(mux)
	return s.observe(s.secure(mux))
}

// healthz answers 200 while the process serves HTTP: a liveness probe. Whether the instance
// can do useful work (database, migrations, audience engine) is /readyz.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.Version})
}
