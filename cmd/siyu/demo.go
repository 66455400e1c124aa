package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/demo"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// demoPasswordKey keeps the demo admin's password in the demo database so a second
// `siyu demo` can print it again. Only the demo does this.
const demoPasswordKey = "demo.admin_password"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs := newFlags("demo", "demo [--customers N] [--seed S] [--fresh] [--db FILE] [--addr ADDR]", stderr)
	cfg.Register(fs, true)
	customers := fs.Int("customers", 20000, "how many customers to generate")
	seed := fs.Int64("seed", 1, "random seed: the same seed (and day) gives the same data set")
	fresh := fs.Bool("fresh", false, "delete an existing demo database and generate a new one")
	generateOnly := fs.Bool("generate-only", false, "generate the data set and exit instead of serving it")
	// The demo has its own database file unless told otherwise, so it never touches siyu.db.
	fs.Lookup("db").DefValue = "siyu-demo.db"
	if v, ok := config.Env("SIYU_DEMO_DB"); ok && v != "" {
		cfg.DB = v
	} else {
		cfg.DB = "siyu-demo.db"
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *customers < 1 || *customers > 50_000_000 {
		return fmt.Errorf("--customers must be between 1 and 50,000,000, got %d", *customers)
	}
	log := cfg.Logger(stderr)
	slog.SetDefault(log)
	if *fresh && !store.IsPostgresDSN(cfg.DB) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(cfg.DB + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	st, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer st.Close()

	n, err := st.CountCustomers(ctx, store.CustomerFilter{})
	if err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(stderr, "Generating a demo data set of %d customers into %s …\n", *customers, cfg.DB)
		p := progress.New("demo", int64(*customers), stderr, log)
		sum, err := demo.Generate(ctx, st, demo.Options{Customers: *customers, Seed: *seed, Progress: p})
		p.Done()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Generated %d customers, %d events, %d orders (%d buyers) and %d staff in %v.\n",
			sum.Customers, sum.Events, sum.Orders, sum.Buyers, sum.Staff, sum.Elapsed.Round(time.Second))
		fmt.Fprintf(stderr, "Setting up tags, tag rules, segments, SOPs, a goal and a first RFM and lifecycle run …\n")
		t := time.Now()
		ws, err := demo.Workspace(ctx, st, sop.NewService(st, nil, log), st.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "Set up %d tag groups with %d tags (%d assignments), %d tag rules, %d segments, %d SOPs and %d goal; RFM found %d buyers in its window (%v).\n",
			ws.TagGroups, ws.Tags, ws.Assignments, ws.TagRules, ws.Segments, ws.SOPs, ws.Goals, ws.RFMBuyers, time.Since(t).Round(time.Second))
	} else {
		fmt.Fprintf(stderr, "%s already holds %d customers: serving them (--fresh generates a new data set).\n", cfg.DB, n)
	}

	pw, err := demoAdmin(ctx, st, cfg.AdminPassword)
	if err != nil {
		return err
	}
	_, writeKey, err := st.CreateKey(ctx, staff.WriteKey, "demo "+time.Now().Format("2006-01-02 15:04"), "", 0)
	if err != nil {
		return err
	}
	if *generateOnly {
		fmt.Fprintf(stdout, "Demo database: %s\nAdmin sign-in: admin / %s\nWrite key: %s\n", cfg.DB, pw, writeKey)
		return nil
	}
	url := cfg.URL()
	fmt.Fprintf(stdout, `
  siyu demo is ready
  ──────────────────
  Console:    %s
  Sign in:    admin / %s
  Write key:  %s

  Send an event:
    curl -u %s: %s/v1/track -H 'Content-Type: application/json' \
      -d '{"userId":"M1","event":"咨询","properties":{"topic":"敏感肌"}}'

`, url, pw, writeKey, writeKey, url)
	return serve(ctx, &cfg, st, log, stdout)
}

// demoAdmin makes sure the demo has an "admin" it can tell the user about (the generated
// staff are sales, operators and content editors): on first run it creates it with a password
// (SIYU_ADMIN_PASSWORD or a random one) and remembers the password in the demo database, so
// later runs can print it again.
func demoAdmin(ctx context.Context, st *store.Store, password string) (string, error) {
	if pw, ok, err := st.Setting(ctx, demoPasswordKey); err != nil || ok {
		return pw, err
	}
	members, err := st.ListStaff(ctx)
	if err != nil {
		return "", err
	}
	for _, m := range members {
		if m.Login == "admin" {
			return "(the password set when this database was first served)", nil
		}
	}
	if password == "" {
		password = staff.NewSecret("")[:16]
	}
	if err := st.CreateStaff(ctx, &staff.Staff{Login: "admin", Name: "管理员", Role: staff.Admin}, password); err != nil {
		return "", err
	}
	return password, st.SetSetting(ctx, demoPasswordKey, password)
}
