package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/demo"
	"github.com/siyu-scrm/siyu/internal/loadtest"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/web"
)

// benchLoad generates a demo data set in a scratch SQLite database, serves it in this process
// on a loopback port exactly as `siyu serve` does (audience engine included), and drives it
// with internal/loadtest. It exits non-zero when a target is missed.
func benchLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("bench load", "bench load [flags]", stderr)
	customers := fs.Int("customers", 5000, "demo customers in the scratch database")
	duration := fs.Duration("duration", 60*time.Second, "how long to run")
	maxReq := fs.Int64("max-requests", 5_000_000, "stop after this many requests, whichever comes first")
	staffN := fs.Int("staff", 50, "signed-in staff browsing the console and the API at once")
	think := fs.Duration("think", 500*time.Millisecond, "longest pause of a staff member between requests (0: none)")
	ingesters := fs.Int("ingesters", 4, "clients sending /v1/batch at once, each as fast as it is answered")
	batchN := fs.Int("batch", 100, "messages per /v1/batch request")
	keep := fs.Bool("keep", false, "keep the scratch database and print its path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour || *maxReq <= 0 || *staffN < 0 || *staffN > 1000 || *ingesters < 0 || *ingesters > 256 || *batchN < 1 || *batchN > 1000 {
		return errors.New("flags out of range: --duration (0, 1h], --max-requests > 0, --staff [0, 1000], --ingesters [0, 256], --batch [1, 1000]")
	}
	if *customers < 100 || *customers > 2_000_000 {
		return fmt.Errorf("--customers must be between 100 and 2,000,000, got %d", *customers)
	}
	cfg.LogLevel, cfg.LogFormat = "warn", "text"
	log := cfg.Logger(stderr)

	dir, err := os.MkdirTemp("", "siyu-load")
	if err != nil {
		return err
	}
	dsn := filepath.Join(dir, "load.db")
	if *keep {
		fmt.Fprintf(stderr, "scratch database: %s (kept)\n", dsn)
	} else {
		defer os.RemoveAll(dir)
	}
	st, err := openStore(ctx, dsn, log)
	if err != nil {
		return err
	}
	defer st.Close()
	p := progress.New("demo", int64(*customers), stderr, log)
	sum, err := demo.Generate(ctx, st, demo.Options{Customers: *customers, Seed: 1, Progress: p})
	p.Done()
	if err != nil {
		return err
	}
	_, writeKey, err := st.CreateKey(ctx, staff.WriteKey, "bench load", "", 0)
	if err != nil {
		return err
	}
	sessions, roles, err := loadSessions(ctx, st, *staffN)
	if err != nil {
		return err
	}

	srvCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	engine := startAudience(srvCtx, st, log)
	for !engine.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	srv := &web.Server{Store: st, Audience: engine, Log: log, Version: version}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go hs.Serve(ln)
	defer hs.Shutdown(context.Background())
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Serving %d customers, %d events, %d orders at %s; %d staff (%s) browse with pauses up to %v, %d ingesters send batches of %d, for %v …\n",
		sum.Customers, sum.Events, sum.Orders, url, *staffN, roles, *think, *ingesters, *batchN, *duration)

	rep, err := loadtest.Run(ctx, st, loadtest.Options{
		BaseURL: url, WriteKey: writeKey, SessionCookie: web.SessionCookie, Sessions: sessions,
		Staff: *staffN, Think: *think, Ingesters: *ingesters, BatchSize: *batchN,
		Duration: *duration, MaxRequests: *maxReq,
	})
	if rep != nil {
		fmt.Fprint(stdout, rep.String())
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return errors.New("a target was missed (see above)")
	}
	return nil
}

// loadSessions signs in n simulated staff: sessions for the demo's sales people, operators and
// admins, round robin (content editors cannot read customers). Sessions are made in the store,
// as a sign-in does after the password check: the sign-in form's rate limit would rightly
// refuse 50 sign-ins a minute from one address.
func loadSessions(ctx context.Context, st *store.Store, n int) ([]loadtest.Session, string, error) {
	members, err := st.ListStaff(ctx)
	if err != nil {
		return nil, "", err
	}
	var pool []*staff.Staff
	for _, m := range members {
		if !m.Disabled && (m.Role == staff.Sales || m.Role == staff.Operator || m.Role == staff.Admin) {
			pool = append(pool, m)
		}
	}
	if len(pool) == 0 {
		return nil, "", errors.New("the demo has no staff who may read customers")
	}
	count := map[staff.Role]int{}
	var out []loadtest.Session
	for i := range n {
		m := pool[i%len(pool)]
		token, sess, err := st.CreateSession(ctx, m.ID, 2*time.Hour)
		if err != nil {
			return nil, "", err
		}
		out = append(out, loadtest.Session{Token: token, CSRF: sess.CSRF})
		count[m.Role]++
	}
	return out, fmt.Sprintf("%d sales, %d operators, %d admins", count[staff.Sales], count[staff.Operator], count[staff.Admin]), nil
}
