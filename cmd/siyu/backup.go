package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/siyu-scrm/siyu/internal/backup"
	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/store"
)

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, file, force, err := fileCommand("backup", "backup FILE [--db DSN] [--force]", "replace FILE if it exists", args, stderr)
	if err != nil {
		return err
	}
	if store.IsPostgresDSN(cfg.DB) {
		dump, restore := backup.PostgresCommands(cfg.DB, file)
		fmt.Fprintf(stdout, `siyu does not back up PostgreSQL itself: use PostgreSQL's own tools, of the server's
major version. A consistent online backup (it does not block siyu):

  %s

To restore it into a new, empty database (then start siyu on it; it migrates as it starts):

  createdb siyu_restored
  %s

Give the password with PGPASSWORD or ~/.pgpass. See docs/operations.md.
`, dump, restore)
		return fmt.Errorf("nothing was written: run the pg_dump command above")
	}
	report, done := bytesProgress("backup", stderr, cfg.Logger(stderr))
	res, err := backup.Create(ctx, cfg.DB, file, backup.Options{Force: force, Progress: report})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %s bytes, schema version %d, in %v\n",
		cfg.DB, res.Path, progress.Count(res.Bytes), res.SchemaVersion, res.Elapsed.Round(1e6))
	return nil
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, file, force, err := fileCommand("restore", "restore FILE [--db PATH] [--force]   (stop siyu serve first)", "replace the database at --db if it exists", args, stderr)
	if err != nil {
		return err
	}
	if store.IsPostgresDSN(cfg.DB) {
		_, restore := backup.PostgresCommands(cfg.DB, file)
		fmt.Fprintf(stdout, "siyu does not restore PostgreSQL itself. Into a new, empty database:\n\n  %s\n\nSee docs/operations.md.\n", restore)
		return fmt.Errorf("nothing was restored: run the pg_restore command above")
	}
	log := cfg.Logger(stderr)
	slog.SetDefault(log)
	info, err := backup.Inspect(ctx, file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: siyu backup, schema version %d, %s customers, %s events\n",
		file, info.SchemaVersion, progress.Count(info.Customers), progress.Count(info.Events))
	report, done := bytesProgress("restore", stderr, log)
	res, err := backup.Restore(ctx, file, cfg.DB, backup.Options{Force: force, Progress: report})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: schema version %d, in %v\n", file, res.Path, res.SchemaVersion, res.Elapsed.Round(1e6))
	return nil
}

// fileCommand parses the flags of a command that takes one FILE and --force, with the
// database settings.
func fileCommand(name, usageLine, forceHelp string, args []string, stderr io.Writer) (*config.Config, string, bool, error) {
	var cfg config.Config
	fs := newFlags(name, usageLine, stderr)
	cfg.Register(fs, false)
	force := fs.Bool("force", false, forceHelp)
	file, err := parseWithFile(fs, args)
	if err != nil {
		return nil, "", false, err
	}
	return &cfg, file, *force, cfg.Validate()
}

// parseWithFile parses flags given before or after the one FILE argument.
func parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return "", errUsage
	}
	file := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: one FILE only, got also %q\n", fs.Name(), fs.Args())
		return "", errUsage
	}
	return file, nil
}

// bytesProgress reports bytes done of an estimated total on a progress bar that appears with
// the first report (a backup refused before it starts shows none); done ends it.
func bytesProgress(label string, w io.Writer, log *slog.Logger) (report func(done, total int64), done func()) {
	var (
		p    *progress.Reporter
		last int64
	)
	report = func(n, total int64) {
		if p == nil {
			p = progress.New(label, total, w, log)
		}
		p.SetTotal(total)
		if n > last {
			p.Add(int(n - last))
			last = n
		}
	}
	return report, func() { p.Done() }
}
