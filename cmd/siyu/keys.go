package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/siyu-scrm/siyu/internal/config"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usageLine = "keys create --kind write|api [--role ROLE] [--staff LOGIN] [--name NAME] | keys list | keys revoke ID"
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		fmt.Fprintf(stderr, "Usage: siyu %s\n", usageLine)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	var cfg config.Config
	fs := newFlags("keys "+args[0], usageLine, stderr)
	cfg.Register(fs, false)
	kind := fs.String("kind", "", "write (ingestion, basic-auth user) or api (JSON API, bearer token)")
	role := fs.String("role", "operator", "role an api key acts as: admin, operator, sales or content")
	name := fs.String("name", "", "a name to tell the key apart")
	staffLogin := fs.String("staff", "", "login of the staff member an api key acts for (a sales key sees their customers)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Refuse bad flags before opening (and perhaps creating) the database.
	if args[0] == "create" {
		if *kind != "write" && *kind != "api" {
			return fmt.Errorf("--kind must be write or api, got %q", *kind)
		}
		if *kind == "api" && !staff.Role(*role).Valid() {
			return fmt.Errorf("--role must be admin, operator, sales or content, got %q", *role)
		}
		if *kind == "write" && *staffLogin != "" {
			return fmt.Errorf("--staff is for api keys; write keys act for nobody")
		}
	}
	st, err := openStore(ctx, cfg.DB, cfg.Logger(io.Discard))
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "create":
		var actsFor int64
		if *staffLogin != "" {
			m, err := st.StaffByLogin(ctx, *staffLogin)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("--staff: no staff member with login %q", *staffLogin)
			}
			if err != nil {
				return err
			}
			actsFor = m.ID
		}
		k, secret, err := st.CreateKey(ctx, staff.KeyKind(*kind), *name, staff.Role(*role), actsFor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "created %s key %d; the secret below is shown only once:\n", k.Kind, k.ID)
		fmt.Fprintln(stdout, secret)
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tROLE\tPREFIX\tNAME\tCREATED\tREVOKED")
		for _, k := range keys {
			revoked := ""
			if !k.RevokedAt.IsZero() {
				revoked = k.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Kind, k.Role, k.Prefix, k.Name, k.CreatedAt.Format("2006-01-02 15:04"), revoked)
		}
		tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("revoke takes one key id")
		}
		id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return fmt.Errorf("key id %q is not a number", fs.Arg(0))
		}
		if err := st.RevokeKey(ctx, id); err != nil {
			return fmt.Errorf("revoke key %d: %w", id, err)
		}
		fmt.Fprintf(stdout, "revoked key %d\n", id)
	}
	return nil
}
