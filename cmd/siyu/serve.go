package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/email"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/report"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segmentsvc"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tagrule"
	"github.com/siyu-scrm/siyu/internal/web"
	"github.com/siyu-scrm/siyu/internal/wecom"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("serve", "serve [flags]", stderr)
	cfg.Register(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	slog.SetDefault(log)
	st, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer st.Close()
	created, pw, err := st.EnsureAdmin(ctx, cfg.AdminPassword)
	if err != nil {
		return err
	}
	if created && cfg.AdminPassword == "" {
		fmt.Fprintf(stdout, "\nFirst start: sign in as admin with password %s\nIt is shown only this once; change it under 设置 → 员工.\n\n", pw)
	}
	return serve(ctx, &cfg, st, log, stdout)
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, dsn string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	n, err := st.Migrate(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	log.Info("database ready", "engine", st.Engine(), "migrations_applied", n, "schema_version", store.SchemaVersion())
	return st, nil
}

// serve runs the HTTP server until ctx is cancelled (SIGINT/SIGTERM), then lets in-flight
// requests finish (up to 30 s) before returning, so the caller closes the database cleanly.
func serve(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger, stdout io.Writer) error {
	// Other instances' commits (PostgreSQL) reach this one's subscribers through the change
	// feed; it starts at the feed's end before the engine's first rebuild reads the store.
	feed, err := st.NewChangeFeed(ctx)
	if err != nil {
		return err
	}
	go feed.Follow(ctx, changeFeedInterval, log)
	engine := startAudience(ctx, st, log)
	go segmentsvc.New(st, engine, log).Run(ctx) // daily segment counts for the count history
	srv := &web.Server{Store: st, Audience: engine, Log: log, SecureCookies: cfg.SecureCookies, Version: version, BaseURL: cfg.BaseURL}
	srv.Security, err = securityConfig(cfg)
	if err != nil {
		return err
	}
	st.SetPasswordPolicy(staff.PasswordPolicy{MinLen: cfg.Security.PasswordMinLen})
	// Tag rules: event rules run in the ingestion transaction (through srv); condition rules
	// are applied by a loop over the audience engine.
	srv.TagRules = tagrule.New(st, srv.RuleMembers)
	go srv.TagRules.Watch(ctx, engine, tagRuleInterval, log)
	// SOPs: event triggers plan in the ingestion transaction (through srv); a scheduler runs
	// due touches, schedule, date and audience firings, and task expiry.
	srv.SOPs = sop.NewService(st, srv.SOPMembers, log)
	// One scheduler runs every kind of job (each claims whatever is due): the SOPs' and the
	// models' recomputes on their schedule (default daily 03:00 Asia/Shanghai).
	jobs := scheduler.New(st, "", log)
	srv.Models = recompute.New(st, srv.ModelMembers, log)
	srv.Models.Register(jobs)
	if next, err := srv.Models.Ensure(ctx, st.Now()); err != nil {
		log.Error("models: the recompute schedule cannot be read; recompute on demand only", "err", err)
	} else {
		log.Info("models: next scheduled recompute", "at", next)
	}
	// Customer ownership: staff transfers (离职继承 / 在职继承, through WeCom's transfer API
	// when WeCom is configured) and the pool's daily release run on the same scheduler.
	srv.Ownership = ownership.New(st, log)
	srv.Ownership.WeCom = func(ctx context.Context) (*wecom.Client, error) {
		return wecom.ConfiguredClient(ctx, st, st, os.Getenv)
	}
	srv.Ownership.Register(jobs)
	if err := srv.Ownership.Start(ctx); err != nil {
		log.Error("ownership: the daily pool release cannot be scheduled", "err", err)
	}
	// The weekly report is mailed on Mondays at 09:00 when an operator turns it on and SMTP is
	// configured (SIYU_SMTP_URL, e.g. smtp://user:pass@smtp.example.com:587?from=siyu@example.com).
	var mail report.Sender
	if u := os.Getenv("SIYU_SMTP_URL"); u != "" {
		mc, err := email.ParseURL(u)
		if err != nil {
			return fmt.Errorf("SIYU_SMTP_URL: %w", err)
		}
		mail = email.New(mc)
	}
	srv.Reports = report.New(st, nil, mail, log)
	srv.Reports.Register(jobs)
	if _, err := srv.Reports.Ensure(ctx, st.Now()); err != nil {
		log.Error("weekly report: the Monday job cannot be queued", "err", err)
	}
	go srv.SOPs.RunOn(ctx, jobs, sopInterval)
	go wecom.Serve(ctx, st, os.Getenv, log) // applies WeCom callbacks queued by /wecom/callback
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	url := cfg.URL()
	if strings.HasSuffix(cfg.Addr, ":0") { // a free port was asked for: say which
		url = "http://" + ln.Addr().String()
	}
	log.Info("serving", "addr", ln.Addr().String(), "url", url)
	fmt.Fprintf(stdout, "siyu is serving at %s\n", url)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// tagRuleInterval is how often condition tag rules are applied: a customer who comes to
// match a rule's condition gets its tags within about this long.
const tagRuleInterval = 3 * time.Second

// sopInterval is how often the SOP scheduler looks for due jobs when nothing wakes it (an
// ingested event wakes it at once).
const sopInterval = 500 * time.Millisecond

// changeFeedInterval is how often an instance reads other instances' commits (PostgreSQL): the
// lag of their writes in this instance's segment counts.
const changeFeedInterval = 500 * time.Millisecond

// startAudience creates the audience engine, subscribes it to every commit and rebuilds it
// from the store in the background (with progress in the log); its habits are recomputed
// hourly, as days pass.
func startAudience(ctx context.Context, st *store.Store, log *slog.Logger) *audience.Engine {
	e := audience.New(st, audience.Options{Fallback: audience.SQLFallback{Store: st}, Log: log})
	st.Subscribe(e.Apply)
	go func() {
		n, err := st.CountCustomers(ctx, store.CustomerFilter{})
		if err != nil {
			log.Error("audience: count customers", "err", err)
		}
		p := progress.New("audience rebuild", n, io.Discard, log)
		if err := e.Rebuild(ctx, reporter{p}); err != nil {
			log.Error("audience: rebuild failed; segment counts are unavailable", "err", err)
			return
		}
		p.Done()
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := e.RefreshHabits(ctx); err != nil {
					log.Warn("audience: refresh habits", "err", err)
				}
			}
		}
	}()
	return e
}

// securityConfig maps the security settings onto the web server's.
func securityConfig(cfg *config.Config) (web.SecurityConfig, error) {
	proxies, err := cfg.Security.Proxies()
	if err != nil {
		return web.SecurityConfig{}, err
	}
	sc := web.SecurityConfig{TrustedProxies: proxies, SessionIdle: cfg.Security.SessionIdle, SessionMax: cfg.Security.SessionMax,
		IngestRate: cfg.Security.IngestRate, PublicRate: cfg.Security.PublicRate, TOTPIssuer: cfg.Security.TOTPIssuer,
		LoginAttempts: cfg.Security.LoginAttempts}
	if sc.SessionIdle == 0 {
		sc.SessionIdle = -1 // 0 in the settings means no idle limit
	}
	if sc.IngestRate == 0 {
		sc.IngestRate = -1 // 0 in the settings means no limit
	}
	return sc, nil
}
