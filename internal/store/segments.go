package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// Saved segments (人群): a name, a description and a condition tree, plus one count per day
// (segment_counts) so that operators see how a segment grows. Trees are validated by the
// caller (package segmentsvc) against SegmentSchema before they are written here; the store
// keeps names unique and refuses to delete a segment that others refer to.

// SavedSegment is a saved segment.
type SavedSegment struct {
	ID          int64         `json:"id"`
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Tree        *segment.Node `json:"tree"`
	CreatedBy   int64         `json:"created_by,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
	// LastCount is the most recent recorded daily count, nil before the first one.
	LastCount *SegmentCount `json:"last_count,omitempty"`
}

// SegmentCount is a segment's size on one day (YYYY-MM-DD in the workspace time zone).
type SegmentCount struct {
	Day   string `json:"day"`
	Count int64  `json:"count"`
}

// SegmentRef names a segment inside an error or another resource.
type SegmentRef struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// SegmentInUseError refuses to delete a segment that other saved segments refer to.
type SegmentInUseError struct {
	ID        int64
	Referrers []SegmentRef
}

func (e *SegmentInUseError) Error() string {
	names := make([]string, len(e.Referrers))
	for i, r := range e.Referrers {
		names[i] = fmt.Sprintf("%q (%d)", r.Name, r.ID)
	}
	return fmt.Sprintf("segment %d is used by %s", e.ID, strings.Join(names, ", "))
}

// Is makes errors.Is(err, ErrConflict) hold, so generic handlers answer 409.
func (e *SegmentInUseError) Is(target error) bool { return target == ErrConflict }

const savedSegmentCols = `s.id, s.name, s.description, s.tree, COALESCE(s.created_by, 0), s.created_at, s.updated_at`

func scanSavedSegment(sc interface{ Scan(...any) error }, extra ...any) (*SavedSegment, error) {
	var (
		g                SavedSegment
		tree             string
		created, updated int64
	)
	if err := sc.Scan(append([]any{&g.ID, &g.Name, &g.Description, &tree, &g.CreatedBy, &created, &updated}, extra...)...); err != nil {
		return nil, err
	}
	n, err := segment.Parse([]byte(tree))
	if err != nil {
		return nil, fmt.Errorf("segment %d tree: %w", g.ID, err)
	}
	g.Tree = n
	g.CreatedAt, g.UpdatedAt = fromMS(created), fromMS(updated)
	return &g, nil
}

func segmentTreeJSON(n *segment.Node) (string, error) {
	if n == nil {
		return "", errors.New("segment without a tree")
	}
	b, err := json.Marshal(n)
	if err != nil {
		return "", fmt.Errorf("encode segment tree: %w", err)
	}
	return string(b), nil
}

// CreateSegment saves a new segment and sets g.ID and its times. A taken name is ErrConflict.
func (s *Store) CreateSegment(ctx context.Context, g *SavedSegment) error {
	tree, err := segmentTreeJSON(g.Tree)
	if err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		now := tx.Now()
		err := tx.row(`INSERT INTO segments (name, description, tree, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			g.Name, g.Description, tree, nullID(g.CreatedBy), ms(now), ms(now)).Scan(&g.ID)
		if isUniqueViolation(err) {
			return fmt.Errorf("segment name %q: %w", g.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("create segment: %w", err)
		}
		g.CreatedAt, g.UpdatedAt = now, now
		return nil
	})
}

// UpdateSegment replaces a segment's name, description and tree. An unknown id is
// ErrNotFound, a name taken by another segment ErrConflict.
func (s *Store) UpdateSegment(ctx context.Context, g *SavedSegment) error {
	tree, err := segmentTreeJSON(g.Tree)
	if err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		now := tx.Now()
		res, err := tx.exec(`UPDATE segments SET name = ?, description = ?, tree = ?, updated_at = ? WHERE id = ?`,
			g.Name, g.Description, tree, ms(now), g.ID)
		if isUniqueViolation(err) {
			return fmt.Errorf("segment name %q: %w", g.Name, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("update segment %d: %w", g.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		g.UpdatedAt = now
		return nil
	})
}

// DeleteSegment deletes a segment and its count history. It is refused with a
// *SegmentInUseError (which is ErrConflict) while other saved segments refer to it; on
// PostgreSQL the segment row is locked first so that the check and the delete see one state.
func (s *Store) DeleteSegment(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		lock := ""
		if s.engine == Postgres {
			lock = " FOR UPDATE"
		}
		var found int64
		err := tx.row(`SELECT id FROM segments WHERE id = ?`+lock, id).Scan(&found)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete segment %d: %w", id, err)
		}
		rows, err := tx.query(`SELECT id, name, tree FROM segments WHERE id <> ? ORDER BY id`, id)
		if err != nil {
			return fmt.Errorf("delete segment %d: %w", id, err)
		}
		var users []SegmentRef
		for rows.Next() {
			var (
				ref  SegmentRef
				tree string
			)
			if err := rows.Scan(&ref.ID, &ref.Name, &tree); err != nil {
				rows.Close()
				return err
			}
			n, err := segment.Parse([]byte(tree))
			if err != nil {
				rows.Close()
				return fmt.Errorf("segment %d tree: %w", ref.ID, err)
			}
			if SegmentRefersTo(n, id) {
				users = append(users, ref)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(users) > 0 {
			return &SegmentInUseError{ID: id, Referrers: users}
		}
		if _, err := tx.exec(`DELETE FROM segment_counts WHERE segment_id = ?`, id); err != nil {
			return fmt.Errorf("delete segment %d counts: %w", id, err)
		}
		if _, err := tx.exec(`DELETE FROM segments WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete segment %d: %w", id, err)
		}
		return nil
	})
}

// SegmentRefersTo reports whether tree names segment id directly.
func SegmentRefersTo(tree *segment.Node, id int64) bool {
	found := false
	segment.Walk(tree, func(n *segment.Node) {
		if n.Segment == id {
			found = true
		}
	})
	return found
}

// lastCountJoin reads each segment's most recent daily count.
const lastCountJoin = ` LEFT JOIN segment_counts c ON c.segment_id = s.id AND c.day = (SELECT MAX(day) FROM segment_counts WHERE segment_id = s.id)`

func scanWithLastCount(sc interface{ Scan(...any) error }) (*SavedSegment, error) {
	var (
		day   sql.NullString
		count sql.NullInt64
	)
	g, err := scanSavedSegment(sc, &day, &count)
	if err != nil {
		return nil, err
	}
	if day.Valid {
		g.LastCount = &SegmentCount{Day: day.String, Count: count.Int64}
	}
	return g, nil
}

// Segment returns one saved segment with its last count, or ErrNotFound.
func (s *Store) Segment(ctx context.Context, id int64) (*SavedSegment, error) {
	g, err := scanWithLastCount(s.db.QueryRowContext(ctx, s.q(`SELECT `+savedSegmentCols+`, c.day, c.count FROM segments s`+lastCountJoin+` WHERE s.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", id, err)
	}
	return g, nil
}

// ListSegments lists every saved segment by name, each with its last count.
func (s *Store) ListSegments(ctx context.Context) ([]*SavedSegment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+savedSegmentCols+`, c.day, c.count FROM segments s`+lastCountJoin+` ORDER BY s.name, s.id`)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	defer rows.Close()
	out := []*SavedSegment{}
	for rows.Next() {
		g, err := scanWithLastCount(rows)
		if err != nil {
			return nil, fmt.Errorf("list segments: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// RecordSegmentCount writes a segment's count for a day, replacing one written earlier that
// day (the last count of a day wins).
func (s *Store) RecordSegmentCount(ctx context.Context, id int64, day string, count int64) error {
	if _, ok := segment.ParseDay(day); !ok {
		return fmt.Errorf("segment count: day %q is not YYYY-MM-DD", day)
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO segment_counts (segment_id, day, count) VALUES (?, ?, ?)
		ON CONFLICT (segment_id, day) DO UPDATE SET count = excluded.count`), id, day, count)
	if err != nil {
		return fmt.Errorf("record segment %d count: %w", id, err)
	}
	return nil
}

// SegmentCounts returns a segment's daily counts from day since (YYYY-MM-DD) on, oldest
// first. Days without a recorded count are absent.
func (s *Store) SegmentCounts(ctx context.Context, id int64, since string) ([]SegmentCount, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT day, count FROM segment_counts WHERE segment_id = ? AND day >= ? ORDER BY day`), id, since)
	if err != nil {
		return nil, fmt.Errorf("segment %d counts: %w", id, err)
	}
	defer rows.Close()
	out := []SegmentCount{}
	for rows.Next() {
		var c SegmentCount
		if err := rows.Scan(&c.Day, &c.Count); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SegmentMembersPageSQL returns up to limit ids of a segment's customers above after, in id
// order: keyset paging for when the audience engine is not ready.
func (s *Store) SegmentMembersPageSQL(ctx context.Context, tree *segment.Node, sch segment.Schema, now time.Time, loc *time.Location, after int64, limit int) ([]int64, error) {
	query, args, err := s.SegmentSQL(tree, sch, now, loc)
	if err != nil {
		return nil, err
	}
	query += " AND c.id > " + s.nthParam(len(args)+1) + " ORDER BY c.id LIMIT " + s.nthParam(len(args)+2)
	rows, err := s.db.QueryContext(ctx, query, append(args, after, int64(limit))...)
	if err != nil {
		return nil, fmt.Errorf("segment members: %w", err)
	}
	defer rows.Close()
	ids := make([]int64, 0, limit)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// SegmentContainsSQL reports whether one customer is in a segment (evaluated as SQL).
func (s *Store) SegmentContainsSQL(ctx context.Context, tree *segment.Node, sch segment.Schema, now time.Time, loc *time.Location, customerID int64) (bool, error) {
	query, args, err := s.SegmentSQL(tree, sch, now, loc)
	if err != nil {
		return false, err
	}
	var n int64
	query = "SELECT COUNT(*) FROM (" + query + " AND c.id = " + s.nthParam(len(args)+1) + ") m"
	if err := s.db.QueryRowContext(ctx, query, append(args, customerID)...).Scan(&n); err != nil {
		return false, fmt.Errorf("segment contains: %w", err)
	}
	return n > 0, nil
}

// nthParam is the i-th BIGINT parameter of a query already rewritten for the engine (SegmentSQL
// answers one), for appending conditions to it.
func (s *Store) nthParam(i int) string {
	if s.engine == Postgres {
		return fmt.Sprintf("CAST($%d AS BIGINT)", i)
	}
	return "?"
}
