package csvimport

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/progress"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Options steer an import.
type Options struct {
	// Strict makes one invalid row abort the import with nothing written. Otherwise valid
	// rows are written and invalid ones reported.
	Strict bool
	// DryRun checks and counts everything, then rolls back.
	DryRun bool
	// Mapping maps CSV headers to fields, overriding the alias table (see ParseMapping).
	Mapping map[string]string
	// Encoding is "" (detect: UTF-8 with or without BOM, GBK/GB18030, UTF-16 with BOM),
	// "utf-8", "gbk" or "utf-16".
	Encoding string
	// Source labels what was imported: customers created without a source column get it as
	// their source; orders get it as their source (default "import").
	Source string
	// BatchSize is how many rows go in one transaction when not strict (default 500).
	BatchSize int
	// Progress, when set, counts rows.
	Progress *progress.Reporter
}

// MaxErrors is how many row errors a report keeps; Invalid counts them all.
const MaxErrors = 1000

// RowError is one invalid row. Line is the file line the row starts on, the header being
// line 1 (a quoted cell spanning lines counts all its lines).
type RowError struct {
	Line   int    `json:"line"`
	Column string `json:"column,omitempty"` // the CSV header of the bad cell
	Reason string `json:"reason"`
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d, column %s: %s", e.Line, e.Column, e.Reason)
}

// Report is what an import did.
type Report struct {
	Encoding string      `json:"encoding"`
	Columns  []ColumnUse `json:"columns"`
	// Rows counts data rows read (blank rows are not rows).
	Rows      int `json:"rows"`
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	// Skipped counts orders that were never paid (待付款, 已取消, …).
	Skipped int `json:"skipped"`
	Invalid int `json:"invalid"`
	// CustomersCreated counts customers an order import had to create.
	CustomersCreated int        `json:"customers_created"`
	Errors           []RowError `json:"errors"`
	// Written is false when nothing was committed (strict mode with invalid rows, dry run).
	Written bool `json:"written"`
}

func (r *Report) invalid(e RowError) {
	r.Invalid++
	if len(r.Errors) < MaxErrors {
		r.Errors = append(r.Errors, e)
	}
}

// ErrInvalidRows is returned (wrapped) by a strict import that found invalid rows.
var ErrInvalidRows = errors.New("invalid rows")

var errDryRun = errors.New("dry run")

// outcome is what writing one row did.
type outcome int

const (
	created outcome = iota
	updated
	unchanged
	skipped
)

// record is one data row as read.
type record struct {
	line  int
	cells []string
	err   *RowError // a CSV syntax error
}

// source reads records from a decoded CSV file.
type source struct {
	r       *csv.Reader
	header  []string
	cols    []column
	buf     []record
	eof     bool
	headers map[string]string // field or attr:KEY → header, to name columns in errors
}

// openSource opens a CSV file whose columns are named by table's aliases (and attribute
// columns when attrs). Every import names customers: a file with no identity column is
// refused.
func openSource(r io.Reader, opts *Options, rep *Report, table aliasTable, attrs bool) (*source, error) {
	dec, enc, err := decode(r, opts.Encoding)
	if err != nil {
		return nil, err
	}
	rep.Encoding = enc
	br := bufio.NewReaderSize(dec, sniffSize)
	cr := csv.NewReader(br)
	cr.Comma = sniffComma(br)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("the file is empty: the first line must name the columns")
	}
	if err != nil {
		return nil, fmt.Errorf("header line: %w", err)
	}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("header column %d is not valid %s text (is the file in another encoding? use --encoding)", i+1, enc)
		}
	}
	cols, err := resolveColumns(header, opts.Mapping, table, attrs)
	if err != nil {
		return nil, err
	}
	rep.Columns = uses(cols)
	s := &source{r: cr, header: header, cols: cols, headers: map[string]string{}}
	for _, c := range cols {
		if c.ignored {
			continue
		}
		key := c.field
		if key == "" {
			key = "attrs." + c.attrKey
		}
		if _, ok := s.headers[key]; !ok {
			s.headers[key] = c.header
		}
	}
	if err := hasIdentityColumn(cols); err != nil {
		return nil, err
	}
	return s, nil
}

// fill reads until n records are buffered or the file ends.
func (s *source) fill(n int) error {
	for len(s.buf) < n && !s.eof {
		cells, err := s.r.Read()
		if errors.Is(err, io.EOF) {
			s.eof = true
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			s.buf = append(s.buf, record{line: pe.StartLine, err: &RowError{Line: pe.StartLine, Reason: "CSV syntax: " + pe.Err.Error()}})
			continue
		}
		if err != nil {
			return err
		}
		line, _ := s.r.FieldPos(0)
		blank := true
		for i := range cells {
			cells[i] = cleanCell(cells[i])
			if cells[i] != "" {
				blank = false
			}
		}
		if blank {
			continue
		}
		rec := record{line: line, cells: cells}
		if len(cells) > len(s.header) {
			rec.err = &RowError{Line: line, Reason: fmt.Sprintf("%d cells but the header has %d columns", len(cells), len(s.header))}
		}
		for i, c := range cells {
			if rec.err == nil && !utf8.ValidString(c) {
				rec.err = &RowError{Line: line, Column: s.colName(i), Reason: "not valid UTF-8 text (is the file GBK? use --encoding gbk)"}
			}
		}
		s.buf = append(s.buf, rec)
	}
	return nil
}

func (s *source) colName(i int) string {
	if i < len(s.cols) {
		return s.cols[i].header
	}
	return ""
}

// take removes up to n buffered records.
func (s *source) take(n int) ([]record, error) {
	if err := s.fill(n); err != nil {
		return nil, err
	}
	n = min(n, len(s.buf))
	out := s.buf[:n:n]
	s.buf = s.buf[n:]
	return out, nil
}

// rowError turns an error met while writing a row into a RowError when it is the row's fault.
func (s *source) rowError(line int, err error) (RowError, bool) {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		col := s.headers[fe.Field]
		reason := fe.Reason
		if col == "" {
			reason = fe.Field + ": " + fe.Reason
		}
		return RowError{Line: line, Column: col, Reason: reason}, true
	}
	return RowError{}, false
}

// importer is one kind of import: parse checks a row without the database, write stores it.
type importer[T any] interface {
	parse(rec record) (T, *RowError)
	write(tx *store.Tx, row T, add *Report) (outcome, error)
}

// run reads, checks and writes every row: in one transaction when strict or a dry run, in
// transactions of BatchSize rows otherwise.
func run[T any](ctx context.Context, st *store.Store, src *source, opts *Options, rep *Report, im importer[T]) error {
	size := opts.BatchSize
	if size <= 0 {
		size = 500
	}
	// writeBatch writes rows and returns the counts, applied to rep only once committed.
	writeBatch := func(tx *store.Tx, recs []record, add *Report) error {
		for _, rec := range recs {
			add.Rows++
			opts.Progress.Add(1)
			if rec.err != nil {
				add.invalid(*rec.err)
				continue
			}
			row, rerr := im.parse(rec)
			if rerr != nil {
				add.invalid(*rerr)
				continue
			}
			out, err := im.write(tx, row, add)
			if err != nil {
				if re, ok := src.rowError(rec.line, err); ok {
					add.invalid(re)
					continue
				}
				return fmt.Errorf("line %d: %w", rec.line, err)
			}
			switch out {
			case created:
				add.Created++
			case updated:
				add.Updated++
			case unchanged:
				add.Unchanged++
			case skipped:
				add.Skipped++
			}
		}
		return nil
	}
	if opts.Strict || opts.DryRun {
		err := st.InTx(ctx, func(tx *store.Tx) error {
			for {
				recs, err := src.take(size)
				if err != nil {
					return err
				}
				if len(recs) == 0 {
					break
				}
				if err := writeBatch(tx, recs, rep); err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if opts.Strict && rep.Invalid > 0 {
				return fmt.Errorf("%d of %d rows are invalid, nothing was written: %w", rep.Invalid, rep.Rows, ErrInvalidRows)
			}
			if opts.DryRun {
				return errDryRun
			}
			return nil
		})
		if errors.Is(err, errDryRun) {
			return nil
		}
		if err == nil {
			rep.Written = true
		}
		return err
	}
	for {
		recs, err := src.take(size)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		var add Report
		err = st.InTx(ctx, func(tx *store.Tx) error {
			add = Report{}
			return writeBatch(tx, recs, &add)
		})
		if err != nil {
			return err
		}
		rep.Written = true
		rep.Rows += add.Rows
		rep.Created += add.Created
		rep.Updated += add.Updated
		rep.Unchanged += add.Unchanged
		rep.Skipped += add.Skipped
		rep.CustomersCreated += add.CustomersCreated
		for _, e := range add.Errors {
			if len(rep.Errors) < MaxErrors {
				rep.Errors = append(rep.Errors, e)
			}
		}
		rep.Invalid += add.Invalid
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// cell returns row's value for column i ("" past the end of a short row: Excel drops
// trailing empty cells).
func cell(cells []string, i int) string {
	if i < len(cells) {
		return cells[i]
	}
	return ""
}

// identities reads the identity columns of a row.
func identities(cols []column, cells []string, line int) ([]customer.Identity, *RowError) {
	var ids []customer.Identity
	for _, f := range identityFields {
		for i, c := range cols {
			if c.ignored || c.field != f.field {
				continue
			}
			v := cell(cells, i)
			if v == "" {
				continue
			}
			var err error
			switch f.kind {
			case customer.PhoneID:
				v, err = normalizePhone(v)
			case customer.EmailID:
				v, err = normalizeEmail(v)
			default:
				if len(v) > 200 {
					err = errors.New("longer than 200 bytes")
				}
			}
			if err != nil {
				return nil, &RowError{Line: line, Column: c.header, Reason: err.Error()}
			}
			ids = append(ids, customer.Identity{Kind: f.kind, Value: v})
		}
	}
	if len(ids) == 0 {
		return nil, &RowError{Line: line, Reason: "no identity: the row needs a user id, phone, email, WeCom external id or unionid"}
	}
	return ids, nil
}

// hasIdentityColumn reports whether any column can identify a customer.
func hasIdentityColumn(cols []column) error {
	for _, c := range cols {
		for _, f := range identityFields {
			if !c.ignored && c.field == f.field {
				return nil
			}
		}
	}
	names := []string{}
	for _, f := range identityFields {
		names = append(names, f.field)
	}
	return fmt.Errorf("no column identifies the customer: name one %s (e.g. 手机号, 用户ID), or map one with --map", strings.Join(names, ", "))
}
