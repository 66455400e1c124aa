package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/csvimport"
	"github.com/siyu-scrm/siyu/internal/progress"
)

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usageLine = "import customers|orders FILE.csv [--strict] [--map \"手机号码=phone,会员等级=attr:level\"] [--encoding gbk] [--dry-run]"
	if len(args) == 0 || (args[0] != "customers" && args[0] != "orders") {
		fmt.Fprintf(stderr, "Usage: siyu %s\n", usageLine)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	kind := args[0]
	var cfg config.Config
	fs := newFlags("import "+kind, usageLine, stderr)
	cfg.Register(fs, false)
	strict := fs.Bool("strict", false, "abort on the first invalid row and write nothing")
	dryRun := fs.Bool("dry-run", false, "check every row and report, write nothing")
	mapping := fs.String("map", "", `column mapping, e.g. "手机号码=phone,会员等级=attr:level" (overrides the header alias table)`)
	encoding := fs.String("encoding", "", "file encoding: utf-8, gbk or utf-16 (default: detect)")
	source := fs.String("source", "", "source channel for customers created without one (orders: the order source)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	// Flags may follow the file name: siyu import customers a.csv --strict
	rest := args[1:]
	var file string
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if file == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Usage: siyu %s\n", usageLine)
		return errUsage
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	m, err := csvimport.ParseMapping(*mapping)
	if err != nil {
		return fmt.Errorf("--map: %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	st, err := openStore(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer st.Close()
	// Progress counts bytes read, the one total known before parsing.
	p := progress.New("import "+kind, info.Size(), stderr, log)
	opts := csvimport.Options{Strict: *strict, DryRun: *dryRun, Mapping: m, Encoding: *encoding, Source: *source}
	r := &countingReader{r: f, p: p}
	var rep *csvimport.Report
	if kind == "customers" {
		rep, err = csvimport.Customers(ctx, st, r, opts)
	} else {
		rep, err = csvimport.Orders(ctx, st, r, opts)
	}
	p.Done()
	if rep != nil {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			printReport(stdout, file, rep)
		}
	}
	if err != nil {
		return err
	}
	if rep.Invalid > 0 && (*strict || !rep.Written) {
		return fmt.Errorf("%d invalid row(s): nothing was written", rep.Invalid)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	p *progress.Reporter
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.Add(n)
	return n, err
}

func printReport(w io.Writer, file string, rep *csvimport.Report) {
	fmt.Fprintf(w, "%s (%s): %d rows — %d created, %d updated, %d unchanged", file, rep.Encoding, rep.Rows, rep.Created, rep.Updated, rep.Unchanged)
	if rep.Skipped > 0 {
		fmt.Fprintf(w, ", %d skipped (not paid)", rep.Skipped)
	}
	if rep.CustomersCreated > 0 {
		fmt.Fprintf(w, ", %d new customers", rep.CustomersCreated)
	}
	fmt.Fprintf(w, ", %d invalid\n", rep.Invalid)
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "  %s: %s\n", file, e.Error())
	}
	if rep.Invalid > len(rep.Errors) {
		fmt.Fprintf(w, "  … and %d more\n", rep.Invalid-len(rep.Errors))
	}
	if !rep.Written {
		fmt.Fprintln(w, "Nothing was written.")
	}
}
