package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Segments as SQL: a condition tree compiled to one query over customers, with correlated
// EXISTS and aggregate subqueries per condition. It is the reference the in-memory audience
// engine is tested against and the SQL side of `siyu bench segments`; docs/segments.md gives
// the semantics both implement. Only fixed SQL text is written: every value from a tree, and
// every attribute or property name, goes in as a parameter.

// SegmentSchema is a segment.Schema read from the database: attribute types, tags with their
// groups, tag groups and the saved segments' trees.
type SegmentSchema struct {
	Attrs  map[string]customer.AttrType
	Tags   map[int64]int64 // tag id → group id
	Groups map[int64]bool
	Trees  map[int64]*segment.Node
}

// AttrType implements segment.Schema.
func (sc *SegmentSchema) AttrType(key string) (customer.AttrType, bool) {
	t, ok := sc.Attrs[key]
	return t, ok
}

// TagExists implements segment.Schema.
func (sc *SegmentSchema) TagExists(id int64) bool { _, ok := sc.Tags[id]; return ok }

// TagGroupExists implements segment.Schema.
func (sc *SegmentSchema) TagGroupExists(id int64) bool { return sc.Groups[id] }

// SegmentTree implements segment.Schema.
func (sc *SegmentSchema) SegmentTree(id int64) (*segment.Node, bool) {
	n, ok := sc.Trees[id]
	return n, ok
}

// SegmentSchema loads what segment validation and evaluation need to know.
func (s *Store) SegmentSchema(ctx context.Context) (*SegmentSchema, error) {
	sc := &SegmentSchema{Attrs: map[string]customer.AttrType{}, Tags: map[int64]int64{}, Groups: map[int64]bool{}, Trees: map[int64]*segment.Node{}}
	read := func(what, query string, scan func(func(...any) error) error) error {
		rows, err := s.db.QueryContext(ctx, query)
		if err != nil {
			return fmt.Errorf("segment schema %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows.Scan); err != nil {
				return fmt.Errorf("segment schema %s: %w", what, err)
			}
		}
		return rows.Err()
	}
	err := read("attributes", `SELECT key, type FROM attribute_defs`, func(scan func(...any) error) error {
		var k, t string
		err := scan(&k, &t)
		sc.Attrs[k] = customer.AttrType(t)
		return err
	})
	if err == nil {
		err = read("tag groups", `SELECT id FROM tag_groups`, func(scan func(...any) error) error {
			var id int64
			err := scan(&id)
			sc.Groups[id] = true
			return err
		})
	}
	if err == nil {
		err = read("tags", `SELECT id, group_id FROM tags`, func(scan func(...any) error) error {
			var id, g int64
			err := scan(&id, &g)
			sc.Tags[id] = g
			return err
		})
	}
	if err == nil {
		err = read("segments", `SELECT id, tree FROM segments`, func(scan func(...any) error) error {
			var id int64
			var tree string
			if err := scan(&id, &tree); err != nil {
				return err
			}
			n, err := segment.Parse([]byte(tree))
			if err != nil {
				return fmt.Errorf("segment %d: %w", id, err)
			}
			sc.Trees[id] = n
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// Rebind rewrites a query written with ? placeholders for the store's engine, for tests and
// tools that write fixtures through DB.
func (s *Store) Rebind(query string) string { return s.q(query) }

// maxSegmentArgs keeps a compiled tree under both engines' limit on parameters.
const maxSegmentArgs = 32000

// SegmentSQL compiles a tree to `SELECT c.id FROM customers c WHERE c.merged_into IS NULL AND
// (…)`, ready to run on this store's engine. Relative days (today, last N days) are days of
// now in loc (nil: segment.Shanghai). The tree is validated against sch first.
func (s *Store) SegmentSQL(tree *segment.Node, sch segment.Schema, now time.Time, loc *time.Location) (query string, args []any, err error) {
	if loc == nil {
		loc = segment.Shanghai
	}
	if err := segment.Validate(tree, sch, 0); err != nil {
		return "", nil, err
	}
	c := &segCompiler{pg: s.engine == Postgres, sch: sch, loc: loc, today: segment.DayOf(now, loc)}
	c.w("SELECT c.id FROM customers c WHERE c.merged_into IS NULL AND (")
	if err := c.node(tree); err != nil {
		return "", nil, err
	}
	c.w(")")
	if len(c.args) > maxSegmentArgs {
		return "", nil, fmt.Errorf("segment has %d values, more than the %d one SQL query takes", len(c.args), maxSegmentArgs)
	}
	return s.q(c.b.String()), c.args, nil
}

// SegmentMembersSQL returns the ids of the customers in a segment, ascending.
func (s *Store) SegmentMembersSQL(ctx context.Context, tree *segment.Node, sch segment.Schema, now time.Time, loc *time.Location) ([]int64, error) {
	query, args, err := s.SegmentSQL(tree, sch, now, loc)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, query+" ORDER BY c.id", args...)
	if err != nil {
		return nil, fmt.Errorf("segment members: %w", err)
	}
	return collect(rows, nil, scanID)
}

// SegmentCountSQL counts the customers in a segment.
func (s *Store) SegmentCountSQL(ctx context.Context, tree *segment.Node, sch segment.Schema, now time.Time, loc *time.Location) (int64, error) {
	query, args, err := s.SegmentSQL(tree, sch, now, loc)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+query+") m", args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("segment count: %w", err)
	}
	return n, nil
}

// MinorUnits converts an amount in major units (yuan) to minor units (fen) the way segment
// conditions do: × 100, rounded half away from zero, clamped far beyond any real amount.
func MinorUnits(v float64) int64 {
	const limit = 1 << 53
	return int64(math.Max(-limit, math.Min(limit, math.Round(v*100))))
}

// segCompiler writes SQL text and its arguments strictly in order, so that the n-th ? is
// always the n-th argument. Every predicate it writes is two-valued (never NULL), so NOT
// means the complement within the universe.
type segCompiler struct {
	pg    bool
	sch   segment.Schema
	loc   *time.Location
	today segment.Day
	b     strings.Builder
	args  []any
	refs  []int64 // saved segments being expanded, outermost first
}

func (c *segCompiler) w(parts ...string) {
	for _, p := range parts {
		c.b.WriteString(p)
	}
}

// Parameters, cast so that PostgreSQL never has to guess their type (CAST … AS DOUBLE
// PRECISION is REAL in SQLite).
func (c *segCompiler) text(v string)   { c.args = append(c.args, v); c.w("CAST(? AS TEXT)") }
func (c *segCompiler) num(v float64)   { c.args = append(c.args, v); c.w("CAST(? AS DOUBLE PRECISION)") }
func (c *segCompiler) bigint(v int64)  { c.args = append(c.args, v); c.w("CAST(? AS BIGINT)") }
func (c *segCompiler) numeric(v int64) { c.args = append(c.args, v); c.w("CAST(? AS NUMERIC)") }

// segList writes "(x, y, …)" with one parameter per item.
func segList[T any](c *segCompiler, items []T, one func(T)) {
	c.w("(")
	for i, x := range items {
		if i > 0 {
			c.w(", ")
		}
		one(x)
	}
	c.w(")")
}

// segJoin writes items separated by op ("AND", "OR"), in parentheses.
func segJoin[T any](c *segCompiler, op string, items []T, one func(T)) {
	c.w("(")
	for i, x := range items {
		if i > 0 {
			c.w(" ", op, " ")
		}
		one(x)
	}
	c.w(")")
}

func (c *segCompiler) not(fn func()) {
	c.w("NOT (")
	fn()
	c.w(")")
}

func (c *segCompiler) node(n *segment.Node) error {
	switch n.Kind() {
	case "group":
		return c.group(n)
	case "field":
		return c.field(n)
	case "tag":
		c.tag(n.Tag)
		return nil
	case "event":
		c.event(n.Event)
		return nil
	case "order":
		c.order(n.Order)
		return nil
	case "habit":
		c.habit(n.Habit)
		return nil
	case "segment":
		return c.segment(n.Segment)
	}
	return fmt.Errorf("segment node of kind %q", n.Kind())
}

func (c *segCompiler) group(n *segment.Node) error {
	if n.Op == "not" {
		c.w("NOT ")
	}
	op := strings.ToUpper(n.Op)
	c.w("(")
	for i, ch := range n.Children {
		if i > 0 {
			c.w(" ", op, " ")
		}
		if err := c.node(ch); err != nil {
			return err
		}
	}
	c.w(")")
	return nil
}

func (c *segCompiler) segment(id int64) error {
	for _, r := range c.refs {
		if r == id {
			return fmt.Errorf("segments refer to each other in a cycle through %d", id)
		}
	}
	tree, ok := c.sch.SegmentTree(id)
	if !ok {
		return fmt.Errorf("no segment %d", id)
	}
	c.refs = append(c.refs, id)
	c.w("(")
	err := c.node(tree)
	c.w(")")
	c.refs = c.refs[:len(c.refs)-1]
	return err
}

// value is how a field is read: set writes a two-valued "the field has a value" predicate
// and v the value, which is not NULL wherever set holds.
type segValue struct{ set, v func() }

// positive writes (set AND pred), two-valued because set is.
func (c *segCompiler) positive(val segValue, pred func()) {
	c.w("(")
	val.set()
	c.w(" AND ")
	pred()
	c.w(")")
}

// JSON access, per engine. SQLite paths quote the key ($."a.b" is the key "a.b"); validation
// keeps quotes and backslashes out of attribute and property names.
func (c *segCompiler) jsonKey(key string) {
	if c.pg {
		c.text(key)
		return
	}
	c.args = append(c.args, `$."`+key+`"`)
	c.w("?")
}

// jsonTypeIs writes a two-valued test of the JSON type at col.key: kind is string, number,
// bool, true, false, array or present (not missing and not null).
func (c *segCompiler) jsonTypeIs(col, key, kind string) {
	names := map[string]string{"string": "'text'", "number": "'integer', 'real'", "bool": "'true', 'false'", "true": "'true'", "false": "'false'", "array": "'array'"}
	if c.pg {
		names = map[string]string{"string": "'string'", "number": "'number'", "bool": "'boolean'", "true": "'boolean'", "false": "'boolean'", "array": "'array'"}
		c.w("(COALESCE(jsonb_typeof(", col, "->")
	} else {
		c.w("(COALESCE(json_type(", col, ", ")
	}
	c.jsonKey(key)
	if kind == "present" {
		c.w("), 'null') <> 'null')")
		return
	}
	c.w("), '') IN (", names[kind], ")")
	if c.pg && (kind == "true" || kind == "false") {
		c.w(" AND ")
		c.jsonText(col, key)
		c.w(" = '", kind, "'")
	}
	c.w(")")
}

// jsonText writes the text at col.key (meaningful where its type is string).
func (c *segCompiler) jsonText(col, key string) {
	if c.pg {
		c.w("(", col, "->>")
		c.jsonKey(key)
		c.w(")")
		return
	}
	c.w("json_extract(", col, ", ")
	c.jsonKey(key)
	c.w(")")
}

// jsonNum writes the number at col.key, NULL where it is not a number.
func (c *segCompiler) jsonNum(col, key string) {
	if c.pg {
		c.w("CASE WHEN jsonb_typeof(", col, "->")
		c.jsonKey(key)
		c.w(") = 'number' THEN CAST(", col, "->>")
		c.jsonKey(key)
		c.w(" AS DOUBLE PRECISION) END")
		return
	}
	c.w("CASE WHEN json_type(", col, ", ")
	c.jsonKey(key)
	c.w(") IN ('integer', 'real') THEN json_extract(", col, ", ")
	c.jsonKey(key)
	c.w(") END")
}

func (c *segCompiler) field(n *segment.Node) error {
	t, ok := segment.FieldType(c.sch, n.Field)
	if !ok {
		return fmt.Errorf("unknown field %q", n.Field)
	}
	if mdl, part, ok := segment.ModelField(n.Field); ok {
		return c.modelField(n, mdl, part)
	}
	key, isAttr := strings.CutPrefix(n.Field, segment.AttrPrefix)
	switch t {
	case segment.String:
		c.stringCmp(c.stringValue(n.Field, key, isAttr), n.Cmp, n.Value)
	case segment.Number:
		c.numberCmp(segValue{
			set: func() { c.jsonTypeIs("c.attrs", key, "number") },
			v:   func() { c.jsonNum("c.attrs", key) },
		}, n.Cmp, n.Value, c.num)
	case segment.Bool:
		switch n.Cmp {
		case "is_set":
			c.jsonTypeIs("c.attrs", key, "bool")
		case "is_not_set":
			c.not(func() { c.jsonTypeIs("c.attrs", key, "bool") })
		default:
			b, _ := n.Value.(bool)
			c.jsonTypeIs("c.attrs", key, map[bool]string{true: "true", false: "false"}[b])
		}
	case segment.Date:
		c.dateCmp(c.stringValue(n.Field, key, isAttr), n.Cmp, n.Value)
	case segment.DateTime:
		col := "c." + n.Field // created_at or last_seen_at: a fixed column name
		c.instantCmp(segValue{set: func() { c.w(col, " <> 0") }, v: func() { c.w(col) }}, n.Cmp, n.Value)
	case segment.StaffRef:
		c.numberCmp(segValue{set: func() { c.w("c.owner_id IS NOT NULL") }, v: func() { c.w("c.owner_id") }}, n.Cmp, n.Value,
			func(f float64) { c.bigint(int64(f)) })
	case segment.List:
		if isAttr {
			c.listAttr(key, n.Cmp, n.Value)
		} else {
			c.optOut(n.Cmp, n.Value)
		}
	default:
		return fmt.Errorf("field %s of type %s", n.Field, t)
	}
	return nil
}

// profileColumns are the text columns string and date conditions read.
var profileColumns = map[string]string{"name": "c.name", "gender": "c.gender", "birthday": "c.birthday", "region": "c.region", "phone": "c.phone", "email": "c.email", "source": "c.source"}

// stringValue reads a text column (set when not empty) or a text attribute (set when a
// non-empty JSON string).
func (c *segCompiler) stringValue(field, key string, isAttr bool) segValue {
	if !isAttr {
		col := profileColumns[field]
		return segValue{set: func() { c.w(col, " <> ''") }, v: func() { c.w(col) }}
	}
	return segValue{
		set: func() {
			c.w("(")
			c.jsonTypeIs("c.attrs", key, "string")
			c.w(" AND ")
			c.jsonText("c.attrs", key)
			c.w(" <> '')")
		},
		v: func() { c.jsonText("c.attrs", key) },
	}
}

// segElems returns the items of a list value (validated: all of type T).
func segElems[T any](v any) []T {
	l, _ := v.([]any)
	out := make([]T, 0, len(l))
	for _, x := range l {
		e, _ := x.(T)
		out = append(out, e)
	}
	return out
}

// positiveOf names the comparison each complement negates.
var positiveOf = map[string]string{"ne": "eq", "not_in": "in", "not_contains": "contains"}

// setCmp handles is_set, is_not_set and the complements ne, not_in and not_contains of a
// field; it reports false for the positive comparisons, which the caller writes.
func (c *segCompiler) setCmp(val segValue, cmp string, v any, pos func(cmp string, v any)) bool {
	switch cmp {
	case "is_set":
		val.set()
	case "is_not_set":
		c.not(val.set)
	case "ne", "not_in", "not_contains":
		c.not(func() { pos(positiveOf[cmp], v) })
	default:
		return false
	}
	return true
}

func (c *segCompiler) stringCmp(val segValue, cmp string, v any) {
	pos := func(cmp string, v any) {
		c.positive(val, func() {
			s, _ := v.(string)
			switch cmp {
			case "eq":
				val.v()
				c.w(" = ")
				c.text(s)
			case "in":
				val.v()
				c.w(" IN ")
				segList(c, segElems[string](v), c.text)
			case "contains":
				c.strContains(val.v, s)
			case "starts_with":
				c.w("substr(")
				val.v()
				c.w(", 1, length(")
				c.text(s)
				c.w(")) = ")
				c.text(s)
			}
		})
	}
	if !c.setCmp(val, cmp, v, pos) {
		pos(cmp, v)
	}
}

// strContains writes a case-sensitive substring test (instr / strpos: no LIKE wildcards).
func (c *segCompiler) strContains(v func(), sub string) {
	if c.pg {
		c.w("strpos(")
	} else {
		c.w("instr(")
	}
	v()
	c.w(", ")
	c.text(sub)
	c.w(") > 0")
}

var sqlOps = map[string]string{"eq": " = ", "ne": " <> ", "lt": " < ", "lte": " <= ", "gt": " > ", "gte": " >= "}

// numberCmp compares a number (attribute or owner id) with param writing each value.
func (c *segCompiler) numberCmp(val segValue, cmp string, v any, param func(float64)) {
	pos := func(cmp string, v any) {
		c.positive(val, func() {
			val.v()
			switch cmp {
			case "in":
				c.w(" IN ")
				segList(c, segElems[float64](v), param)
			case "between":
				b := segElems[float64](v)
				c.w(" BETWEEN ")
				param(b[0])
				c.w(" AND ")
				param(b[1])
			default:
				f, _ := v.(float64)
				c.w(sqlOps[cmp])
				param(f)
			}
		})
	}
	if !c.setCmp(val, cmp, v, pos) {
		pos(cmp, v)
	}
}

// Date bounds: dates are compared as YYYY-MM-DD text, so days are clamped to years 0–9999.
var (
	firstDate = segment.DayOfDate(0, time.January, 1)
	lastDate  = segment.DayOfDate(9999, time.December, 31)
)

func (c *segCompiler) dateCmp(val segValue, cmp string, v any) {
	switch cmp {
	case "is_set":
		val.set()
		return
	case "is_not_set":
		c.not(val.set)
		return
	}
	c.positive(val, func() {
		if cmp == "anniversary_in_next_days" {
			f, _ := v.(float64)
			keys := []string{}
			for k := range segment.Anniversaries(c.today, int(f)) {
				keys = append(keys, fmt.Sprintf("%02d-%02d", k/100, k%100))
			}
			sort.Strings(keys)
			c.w("substr(")
			val.v()
			c.w(", 6, 5) IN ")
			segList(c, keys, c.text)
			return
		}
		r := segment.DateRange(cmp, v, c.today)
		r.From, r.To = max(r.From, firstDate), min(r.To, lastDate)
		if r.From > r.To {
			c.w("FALSE")
			return
		}
		val.v()
		c.w(" BETWEEN ")
		c.text(r.From.Date().Format("2006-01-02"))
		c.w(" AND ")
		c.text(r.To.Date().Format("2006-01-02"))
	})
}

// msRange turns an inclusive range of days into inclusive Unix ms bounds in loc; ok is false
// when the range is empty.
func (c *segCompiler) msRange(r segment.Range) (lo, hi int64, ok bool) {
	if r.From > r.To {
		return 0, 0, false
	}
	lo, hi = math.MinInt64, math.MaxInt64
	if r.From != segment.MinDay {
		lo = r.From.Start(c.loc).UnixMilli()
	}
	if r.To != segment.MaxDay {
		hi = (r.To + 1).Start(c.loc).UnixMilli() - 1
	}
	return lo, hi, true
}

// inRange writes "expr BETWEEN lo AND hi" for a day range, or FALSE when it is empty.
func (c *segCompiler) inRange(expr func(), r segment.Range) {
	lo, hi, ok := c.msRange(r)
	if !ok {
		c.w("FALSE")
		return
	}
	expr()
	c.w(" BETWEEN ")
	c.bigint(lo)
	c.w(" AND ")
	c.bigint(hi)
}

// instantCmp compares the day of a Unix ms instant.
func (c *segCompiler) instantCmp(val segValue, cmp string, v any) {
	switch cmp {
	case "is_set":
		val.set()
	case "is_not_set":
		c.not(val.set)
	default:
		c.positive(val, func() { c.inRange(val.v, segment.DateRange(cmp, v, c.today)) })
	}
}

// aggInstantCmp compares the day of an aggregate instant (MIN or MAX of a subquery), unset
// where the subquery has no rows.
func (c *segCompiler) aggInstantCmp(agg func(), exists func(), cmp string, v any) {
	switch cmp {
	case "is_set":
		exists()
	case "is_not_set":
		c.not(exists)
	default:
		c.w("COALESCE(")
		c.inRange(agg, segment.DateRange(cmp, v, c.today))
		c.w(", FALSE)")
	}
}

func (c *segCompiler) optOut(cmp string, v any) {
	has := func(channels []string) {
		c.w("EXISTS (SELECT 1 FROM customer_optouts x WHERE x.customer_id = c.id")
		if channels != nil {
			c.w(" AND x.channel IN ")
			segList(c, channels, c.text)
		}
		c.w(")")
	}
	c.listCmp(cmp, v, has)
}

// listCmp writes a list condition given has(values): "the list holds one of values", or
// with nil values "the list is not empty".
func (c *segCompiler) listCmp(cmp string, v any, has func([]string)) {
	one := func(s string) { has([]string{s}) }
	switch cmp {
	case "contains":
		s, _ := v.(string)
		one(s)
	case "not_contains":
		s, _ := v.(string)
		c.not(func() { one(s) })
	case "contains_any":
		has(segElems[string](v))
	case "contains_all":
		segJoin(c, "AND", segDedupe(segElems[string](v)), one)
	case "is_set":
		has(nil)
	case "is_not_set":
		c.not(func() { has(nil) })
	}
}

func segDedupe[T comparable](xs []T) []T {
	seen := map[T]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// listAttr tests a list attribute: a JSON array of strings.
func (c *segCompiler) listAttr(key, cmp string, v any) {
	c.listCmp(cmp, v, func(values []string) {
		c.w("(")
		c.jsonTypeIs("c.attrs", key, "array")
		c.w(" AND ")
		switch {
		case values == nil && c.pg:
			c.w("c.attrs->")
			c.jsonKey(key)
			c.w(" <> '[]'::jsonb")
		case values == nil:
			c.w("json_array_length(c.attrs, ")
			c.jsonKey(key)
			c.w(") > 0")
		case c.pg:
			segJoin(c, "OR", values, func(s string) {
				c.w("c.attrs->")
				c.jsonKey(key)
				c.w(" @> jsonb_build_array(")
				c.text(s)
				c.w(")")
			})
		default:
			c.w("EXISTS (SELECT 1 FROM json_each(c.attrs, ")
			c.jsonKey(key)
			c.w(") j WHERE j.type = 'text' AND j.value IN ")
			segList(c, values, c.text)
			c.w(")")
		}
		c.w(")")
	})
}

func (c *segCompiler) tag(t *segment.TagCond) {
	has := func(ids []int64) {
		if t.Group != 0 {
			c.w("EXISTS (SELECT 1 FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE ct.customer_id = c.id AND t.group_id = ")
			c.bigint(t.Group)
			c.w(")")
			return
		}
		c.w("EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.customer_id = c.id AND ct.tag_id IN ")
		segList(c, ids, c.bigint)
		c.w(")")
	}
	ids := segDedupe(t.IDs)
	switch t.Match {
	case "any":
		has(ids)
	case "none":
		c.not(func() { has(ids) })
	case "all":
		segJoin(c, "AND", ids, func(id int64) { has([]int64{id}) })
	}
}

// countShape tells whether "count cmp v" over counts 0, 1, 2, … is "at least one" (+1),
// "none" (-1) or neither (0), so that those become EXISTS / NOT EXISTS (semi- and anti-joins
// for PostgreSQL) instead of a count per customer.
func countShape(cmp string, v float64) int {
	switch {
	case cmp == "gte" && v > 0 && v <= 1, cmp == "gt" && v >= 0 && v < 1, cmp == "ne" && v == 0:
		return 1
	case cmp == "lt" && v > 0 && v <= 1, cmp == "lte" && v >= 0 && v < 1, cmp == "eq" && v == 0:
		return -1
	}
	return 0
}

// countCmp writes "the number of rows of from (a FROM … WHERE … text writer) cmp v".
func (c *segCompiler) countCmp(from func(), cmp string, v float64) {
	switch countShape(cmp, v) {
	case 1:
		c.w("EXISTS (SELECT 1")
		from()
		c.w(")")
	case -1:
		c.w("NOT EXISTS (SELECT 1")
		from()
		c.w(")")
	default:
		c.w("(SELECT COUNT(*)")
		from()
		c.w(")", sqlOps[cmp])
		c.num(v)
	}
}

func (c *segCompiler) event(ev *segment.EventCond) {
	from := func(window bool) func() {
		return func() {
			c.w(" FROM events e WHERE e.customer_id = c.id AND e.name = ")
			c.text(ev.Name)
			if window && ev.Window != nil {
				c.w(" AND ")
				c.inRange(func() { c.w("e.ts") }, ev.Window.Resolve(c.today))
			}
			for _, p := range ev.Where {
				c.w(" AND ")
				c.prop(p)
			}
		}
	}
	if ev.Timing == "" {
		cmp, v := "gte", 1.0
		if ev.Count != nil {
			cmp, v = ev.Count.Cmp, ev.Count.Value
		}
		c.countCmp(from(true), cmp, v)
		return
	}
	agg := "MIN"
	if ev.Timing == "last" {
		agg = "MAX"
	}
	c.aggInstantCmp(func() {
		c.w("(SELECT ", agg, "(e.ts)")
		from(false)()
		c.w(")")
	}, func() { c.countCmp(from(false), "gte", 1) }, ev.Cmp, ev.Value)
}

// prop writes a two-valued test of one event property.
func (c *segCompiler) prop(p segment.PropCond) {
	const col = "e.properties"
	eq := func(v any) {
		c.w("(")
		switch x := v.(type) {
		case string:
			c.jsonTypeIs(col, p.Prop, "string")
			c.w(" AND ")
			c.jsonText(col, p.Prop)
			c.w(" = ")
			c.text(x)
		case float64:
			c.jsonTypeIs(col, p.Prop, "number")
			c.w(" AND ")
			c.jsonNum(col, p.Prop)
			c.w(" = ")
			c.num(x)
		case bool:
			c.jsonTypeIs(col, p.Prop, map[bool]string{true: "true", false: "false"}[x])
		default:
			c.w("FALSE")
		}
		c.w(")")
	}
	in := func(v any) {
		l, _ := v.([]any)
		segJoin(c, "OR", l, eq)
	}
	switch p.Cmp {
	case "eq":
		eq(p.Value)
	case "ne":
		c.not(func() { eq(p.Value) })
	case "in":
		in(p.Value)
	case "not_in":
		c.not(func() { in(p.Value) })
	case "contains":
		s, _ := p.Value.(string)
		c.w("(")
		c.jsonTypeIs(col, p.Prop, "string")
		c.w(" AND ")
		c.strContains(func() { c.jsonText(col, p.Prop) }, s)
		c.w(")")
	case "gt", "gte", "lt", "lte":
		f, _ := p.Value.(float64)
		c.w("(")
		c.jsonTypeIs(col, p.Prop, "number")
		c.w(" AND ")
		c.jsonNum(col, p.Prop)
		c.w(sqlOps[p.Cmp])
		c.num(f)
		c.w(")")
	case "is_set":
		c.jsonTypeIs(col, p.Prop, "present")
	case "is_not_set":
		c.not(func() { c.jsonTypeIs(col, p.Prop, "present") })
	default:
		c.w("FALSE")
	}
}

// paidOrders writes the FROM of a customer's paid orders, within w when w is not nil.
func (c *segCompiler) paidOrders(w *segment.Window) func() {
	return func() {
		c.w(" FROM orders o WHERE o.customer_id = c.id AND o.status <> 'refunded'")
		if w != nil {
			c.w(" AND ")
			c.inRange(func() { c.w("o.paid_at") }, w.Resolve(c.today))
		}
	}
}

const netMinor = "o.amount_minor - o.refunded_minor"

func (c *segCompiler) order(o *segment.OrderCond) {
	from := c.paidOrders(o.Window)
	switch o.Metric {
	case "count":
		c.orderNumber(o.Cmp, o.Value, func(cmp string, v float64) { c.countCmp(from, cmp, v) }, nil)
	case "total":
		c.orderNumber(o.Cmp, o.Value, func(cmp string, v float64) {
			c.w("(SELECT COALESCE(SUM(", netMinor, "), 0)")
			from()
			c.w(")", sqlOps[cmp])
			c.bigint(MinorUnits(v))
		}, nil)
	case "avg":
		// avg cmp v ⟺ total cmp v×count, over customers with at least one order.
		c.orderNumber(o.Cmp, o.Value, func(cmp string, v float64) {
			c.w("(SELECT CASE WHEN COUNT(*) > 0 AND SUM(", netMinor, ")", sqlOps[cmp])
			c.numeric(MinorUnits(v))
			c.w(" * COUNT(*) THEN 1 ELSE 0 END")
			from()
			c.w(") = 1")
		}, func() { c.countCmp(from, "gte", 1) })
	case "first_at", "last_at":
		agg := map[string]string{"first_at": "MIN", "last_at": "MAX"}[o.Metric]
		all := c.paidOrders(nil)
		c.aggInstantCmp(func() {
			c.w("(SELECT ", agg, "(o.paid_at)")
			all()
			c.w(")")
		}, func() { c.countCmp(all, "gte", 1) }, o.Cmp, o.Value)
	}
}

// orderNumber writes a number comparison of an order metric through one(cmp, v) for the
// basic comparisons. set is nil for metrics every customer has (count and total: 0 without
// orders); otherwise it writes "the metric has a value".
func (c *segCompiler) orderNumber(cmp string, v any, one func(cmp string, v float64), set func()) {
	f, _ := v.(float64)
	switch cmp {
	case "is_set", "is_not_set":
		switch {
		case set == nil:
			c.w(map[string]string{"is_set": "TRUE", "is_not_set": "FALSE"}[cmp])
		case cmp == "is_set":
			set()
		default:
			c.not(set)
		}
	case "ne":
		c.not(func() { one("eq", f) })
	case "in":
		segJoin(c, "OR", segElems[float64](v), func(x float64) { one("eq", x) })
	case "not_in":
		c.not(func() { segJoin(c, "OR", segElems[float64](v), func(x float64) { one("eq", x) }) })
	case "between":
		b := segElems[float64](v)
		c.w("(")
		one("gte", b[0])
		c.w(" AND ")
		one("lte", b[1])
		c.w(")")
	default:
		one(cmp, f)
	}
}

func (c *segCompiler) habit(h *segment.HabitCond) {
	days, table, col, filter := 90, "events e", "e.ts", "e.customer_id = c.id"
	if strings.HasPrefix(h.Kind, "buy_") {
		days, table, col, filter = 365, "orders o", "o.paid_at", "o.customer_id = c.id AND o.status <> 'refunded'"
	}
	lo, hi, _ := c.msRange(segment.Range{From: c.today - segment.Day(days) + 1, To: c.today})
	local := func() { // the instant as local Unix ms
		c.w("(", col, " + ")
		c.zoneOffset(col, lo, hi)
		c.w(")")
	}
	c.w("COALESCE((SELECT ")
	if strings.HasSuffix(h.Kind, "_hour") {
		local()
		c.w(" / 3600000 % 24")
	} else { // ISO weekday: 1970-01-01 was a Thursday (4)
		c.w("(")
		local()
		c.w(" / 86400000 + 3) % 7 + 1")
	}
	c.w(" FROM ", table, " WHERE ", filter, " AND ", col, " BETWEEN ")
	c.bigint(lo)
	c.w(" AND ")
	c.bigint(hi)
	c.w(" GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1), -1) IN ")
	segList(c, segDedupe(h.In), func(x int) { c.bigint(int64(x)) })
}

// zoneOffset writes loc's UTC offset in ms at the instant col, for instants from lo to hi:
// one parameter, or a CASE over the offset changes (daylight saving time) in between.
func (c *segCompiler) zoneOffset(col string, lo, hi int64) {
	spans := zoneSpans(c.loc, lo, hi)
	if len(spans) == 1 {
		c.bigint(spans[0].off)
		return
	}
	c.w("CASE")
	for _, s := range spans[:len(spans)-1] {
		c.w(" WHEN ", col, " < ")
		c.bigint(s.until)
		c.w(" THEN ")
		c.bigint(s.off)
	}
	c.w(" ELSE ")
	c.bigint(spans[len(spans)-1].off)
	c.w(" END")
}

type zoneSpan struct{ until, off int64 } // offset off (ms) holds before until (Unix ms)

// zoneSpans lists loc's offsets between lo and hi (Unix ms), finding each change to the
// second by bisection.
func zoneSpans(loc *time.Location, lo, hi int64) []zoneSpan {
	offAt := func(sec int64) int64 { _, o := time.Unix(sec, 0).In(loc).Zone(); return int64(o) * 1000 }
	var out []zoneSpan
	t, end := lo/1000, hi/1000
	cur := offAt(t)
	for t < end {
		next := min(t+3600, end)
		if o := offAt(next); o != cur {
			a, b := t, next // offset cur at a, another at b
			for b-a > 1 {
				m := a + (b-a)/2
				if offAt(m) == cur {
					a = m
				} else {
					b = m
				}
			}
			out = append(out, zoneSpan{until: b * 1000, off: cur})
			cur = offAt(b)
			next = b
		}
		t = next
	}
	return append(out, zoneSpan{until: math.MaxInt64, off: cur})
}
