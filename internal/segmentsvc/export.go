package segmentsvc

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
)

// ExportColumns are the columns of an export, in order.
var ExportColumns = []string{"id", "name", "phone", "email", "gender", "region", "source", "owner", "created_at", "tags"}

// exportChunk is how many customers an export reads at a time.
const exportChunk = 1000

// MaxXLSXRows is how many members fit in one worksheet (Excel's limit, less the header).
const MaxXLSXRows = excelize.TotalRows - 1

// ErrTooManyForXLSX refuses an xlsx export larger than a worksheet holds.
type ErrTooManyForXLSX struct{ Count int64 }

func (e *ErrTooManyForXLSX) Error() string {
	return fmt.Sprintf("%d members do not fit in one Excel worksheet (at most %d): export as csv", e.Count, MaxXLSXRows)
}

// Export is a prepared export of a saved segment's members: the segment is evaluated (and its
// tree validated) before anything is written, so that errors can still be answered properly.
type Export struct {
	Segment *store.SavedSegment
	Count   int64
	Source  Source
	// Mask writes phone numbers and emails masked (138****5678), for a principal without the
	// reveal permission.
	Mask bool

	s     *Service
	q     *query
	owner Owner
	// engine: the members, evaluated once when the export was prepared.
	members interface {
		HasNext() bool
		Next() uint32
	}
}

// Export prepares an export of a saved segment's members within the owner's scope.
func (s *Service) Export(ctx context.Context, id int64, owner Owner) (*Export, error) {
	g, q, err := s.prepareSaved(ctx, id, owner)
	if err != nil {
		return nil, err
	}
	x := &Export{Segment: g, Source: q.source, s: s, q: q, owner: owner}
	switch {
	case q.nobody:
	case q.source == SourceEngine:
		b, err := s.Engine.Evaluate(ctx, q.tree, q.segs())
		if err != nil {
			return nil, err
		}
		x.Count = int64(b.GetCardinality())
		x.members = b.Iterator()
	default:
		if x.Count, err = q.count(ctx); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// exportRow is one member as exported.
type exportRow struct {
	c     *customer.Customer
	owner string
	tags  string
}

// each calls fn with the members, a chunk at a time, in id order.
func (x *Export) each(ctx context.Context, fn func([]exportRow) error) error {
	if x.q.nobody {
		return nil
	}
	staff, err := x.s.Store.ListStaff(ctx)
	if err != nil {
		return err
	}
	owners := map[int64]string{}
	for _, m := range staff {
		owners[m.ID] = m.Name
		if m.Name == "" {
			owners[m.ID] = m.Login
		}
	}
	groups, err := x.s.Store.ListTagGroups(ctx)
	if err != nil {
		return err
	}
	tagNames := map[int64]string{}
	for _, g := range groups {
		for _, t := range g.Tags {
			tagNames[t.ID] = t.Name
		}
	}
	after := int64(0)
	for {
		var ids []int64
		if x.members != nil {
			for len(ids) < exportChunk && x.members.HasNext() {
				ids = append(ids, int64(x.members.Next()))
			}
		} else if ids, err = x.q.page(ctx, after, exportChunk); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		after = ids[len(ids)-1]
		cs, err := x.s.customers(ctx, ids, x.owner)
		if err != nil {
			return err
		}
		tags := map[int64][]string{}
		err = x.s.Store.ScanCustomerTags(ctx, ids, func(c, t int64) {
			if name, ok := tagNames[t]; ok {
				tags[c] = append(tags[c], name)
			}
		})
		if err != nil {
			return err
		}
		rows := make([]exportRow, len(cs))
		for i, c := range cs {
			rows[i] = exportRow{c: c, tags: strings.Join(tags[c.ID], "、")}
			if c.OwnerID != 0 {
				rows[i].owner = owners[c.OwnerID]
				if rows[i].owner == "" {
					rows[i].owner = strconv.FormatInt(c.OwnerID, 10)
				}
			}
		}
		if err := fn(rows); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func (x *Export) values(r exportRow) []string {
	c := r.c
	if x.Mask {
		c = c.Masked()
	}
	created := ""
	if !c.CreatedAt.IsZero() {
		created = c.CreatedAt.In(x.s.loc()).Format("2006-01-02 15:04:05")
	}
	return []string{strconv.FormatInt(c.ID, 10), c.Name, c.Phone, c.Email, c.Gender, c.Region, c.Source, r.owner, created, r.tags}
}

// WriteCSV writes the members as CSV, UTF-8 with a byte order mark so that Excel reads the
// Chinese correctly. Cells that Excel would run as a formula are prefixed with an apostrophe.
func (x *Export) WriteCSV(ctx context.Context, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString("\uFEFF"); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	if err := cw.Write(ExportColumns); err != nil {
		return err
	}
	err := x.each(ctx, func(rows []exportRow) error {
		for _, r := range rows {
			vals := x.values(r)
			for i, v := range vals {
				vals[i] = csvSafe(v)
			}
			if err := cw.Write(vals); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// csvSafe defuses formula injection: a cell starting with = + - @ (or a tab or carriage
// return) gets a leading apostrophe, unless it is a plain number such as +8613800000000.
func csvSafe(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if strings.Trim(v, "+-0123456789 ().") == "" && v[0] != '=' && v[0] != '@' && len(v) > 1 {
		return v
	}
	return "'" + v
}

// WriteXLSX writes the members as an Excel workbook with one sheet. excelize's StreamWriter
// writes rows out as they come (spilling to a temporary file when large) instead of keeping
// every cell in memory, so a large segment costs little memory; the workbook is then written
// to w in one piece. Cells are written as text or numbers, never as formulas.
func (x *Export) WriteXLSX(ctx context.Context, w io.Writer) error {
	if x.Count > MaxXLSXRows {
		return &ErrTooManyForXLSX{Count: x.Count}
	}
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Sheet1"
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	header := make([]any, len(ExportColumns))
	for i, c := range ExportColumns {
		header[i] = c
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	row := 2
	err = x.each(ctx, func(rows []exportRow) error {
		for _, r := range rows {
			if row > excelize.TotalRows {
				return &ErrTooManyForXLSX{Count: int64(row - 1)}
			}
			vals := x.values(r)
			cells := make([]any, len(vals))
			cells[0] = r.c.ID
			for i := 1; i < len(vals); i++ {
				cells[i] = vals[i]
			}
			cell, _ := excelize.CoordinatesToCellName(1, row)
			if err := sw.SetRow(cell, cells); err != nil {
				return err
			}
			row++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}
