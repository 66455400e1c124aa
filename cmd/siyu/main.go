// Command siyu is the private-domain customer operations platform: one binary that serves the
// console and APIs, generates demo data, imports CSV files and migrates the database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "serve the console, the JSON API and the ingestion API", runServe},
		{"demo", "generate a realistic demo data set and serve it", runDemo},
		{"import", "import customers or orders from a CSV file", runImport},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"keys", "create, list and revoke API and write keys", runKeys},
		{"backup", "take a consistent online backup of the SQLite database", runBackup},
		{"restore", "restore a SQLite backup (stop the server first)", runRestore},
		{"bench", "measure end-to-end performance", runBench},
		{"rfm", "compute RFM now and print the class table", runRFM},
		{"tiers", "update member points and tiers now and print the tier counts", runTiers},
		{"version", "print the version", runVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "siyu (私域) — private-domain customer operations")
	fmt.Fprintln(w, "\nUsage: siyu COMMAND [flags]   (siyu COMMAND --help for a command's flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nSettings come from flags or SIYU_* environment variables (SIYU_DB, SIYU_ADDR, …).")
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "siyu %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "siyu: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags makes a command's flag set whose --help lists the flags with a usage line.
func newFlags(name, usageLine string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("siyu "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: siyu %s\n\nFlags:\n", usageLine)
		fs.PrintDefaults()
	}
	return fs
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "version", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "siyu %s\n", version)
	return nil
}
