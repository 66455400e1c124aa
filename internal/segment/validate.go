package segment

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Validate checks a tree against the schema and returns the first problem as an *Error whose
// path names the node. selfID is the id of the segment being saved (0 for an unsaved tree), so
// that a segment referring to itself, directly or through others, is refused.
func Validate(n *Node, s Schema, selfID int64) error {
	v := &validator{s: s, self: selfID}
	return v.node(n, "", 0, nil)
}

type validator struct {
	s     Schema
	self  int64
	nodes int
}

func errf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, part string) string {
	if path == "" {
		return part
	}
	return path + "." + part
}

func (v *validator) node(n *Node, path string, depth int, segStack []int64) error {
	if n == nil {
		return errf(path, "empty node")
	}
	v.nodes++
	if v.nodes > MaxNodes {
		return errf(path, "tree has more than %d nodes", MaxNodes)
	}
	if depth > MaxDepth {
		return errf(path, "tree nests deeper than %d levels", MaxDepth)
	}
	switch k := n.Kind(); k {
	case "group":
		return v.group(n, path, depth, segStack)
	case "field":
		return v.field(n, path)
	case "tag":
		return v.tag(n.Tag, join(path, "tag"))
	case "event":
		return v.event(n.Event, join(path, "event"))
	case "order":
		return v.order(n.Order, join(path, "order"))
	case "habit":
		return v.habit(n.Habit, join(path, "habit"))
	case "segment":
		return v.segment(n.Segment, join(path, "segment"), depth, segStack)
	case "":
		return errf(path, "node has no condition: set op (and/or/not with children), field, tag, event, order, habit or segment")
	default:
		return errf(path, "node mixes %s: give each its own node", k)
	}
}

func (v *validator) group(n *Node, path string, depth int, segStack []int64) error {
	switch n.Op {
	case "and", "or":
		if len(n.Children) == 0 {
			return errf(path, "%s needs at least one child", n.Op)
		}
	case "not":
		if len(n.Children) != 1 {
			return errf(path, "not takes exactly one child, got %d", len(n.Children))
		}
	default:
		return errf(join(path, "op"), "unknown operator %q (want and, or, not)", n.Op)
	}
	if n.Cmp != "" || n.Value != nil {
		return errf(path, "a group takes no cmp or value")
	}
	for i, c := range n.Children {
		if err := v.node(c, join(path, fmt.Sprintf("children[%d]", i)), depth+1, segStack); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) field(n *Node, path string) error {
	t, ok := FieldType(v.s, n.Field)
	if !ok {
		if strings.HasPrefix(n.Field, AttrPrefix) {
			return errf(join(path, "field"), "unknown attribute %q", strings.TrimPrefix(n.Field, AttrPrefix))
		}
		if _, isAttr := FieldType(v.s, AttrPrefix+n.Field); isAttr {
			return errf(join(path, "field"), "unknown field %q (the custom attribute is %q)", n.Field, AttrPrefix+n.Field)
		}
		return errf(join(path, "field"), "unknown field %q", n.Field)
	}
	if err := checkCmp(t, n.Cmp, n.Value, path, n.Field); err != nil {
		return err
	}
	if _, part, ok := ModelField(n.Field); ok {
		if IsScore(part) {
			return checkScoreValues(n.Field, n.Value, path)
		}
		if t == String {
			return checkKnownValues(v.s, n.Field, n.Cmp, n.Value, path)
		}
	}
	return nil
}

// checkCmp validates an operator and its value for a type.
func checkCmp(t Type, cmp string, value any, path, what string) error {
	if !contains(Operators[t], cmp) {
		return errf(join(path, "cmp"), "operator %q does not apply to %s (a %s); want one of %s", cmp, what, t, strings.Join(Operators[t], ", "))
	}
	vp := join(path, "value")
	switch cmp {
	case "is_set", "is_not_set":
		if value != nil {
			return errf(vp, "%s takes no value", cmp)
		}
		return nil
	case "in", "not_in", "contains_any", "contains_all":
		list, ok := value.([]any)
		if !ok || len(list) == 0 {
			return errf(vp, "%s needs a non-empty list", cmp)
		}
		if len(list) > 10000 {
			return errf(vp, "more than 10000 values")
		}
		elem := t
		if t == List {
			elem = String
		}
		for i, x := range list {
			if err := checkScalar(elem, x, fmt.Sprintf("%s[%d]", vp, i)); err != nil {
				return err
			}
		}
		return nil
	case "between":
		list, ok := value.([]any)
		if !ok || len(list) != 2 {
			return errf(vp, "between needs [low, high]")
		}
		elem := t
		if t == DateTime {
			elem = Date
		}
		for i, x := range list {
			if err := checkScalar(elem, x, fmt.Sprintf("%s[%d]", vp, i)); err != nil {
				return err
			}
		}
		if lessValue(list[1], list[0]) {
			return errf(vp, "low is above high")
		}
		return nil
	case "in_last_days", "more_than_days_ago", "in_next_days", "anniversary_in_next_days":
		return checkDays(value, vp)
	case "on", "before", "after":
		return checkScalar(Date, value, vp)
	case "contains", "not_contains", "starts_with":
		return checkScalar(String, value, vp)
	}
	return checkScalar(t, value, vp)
}

func lessValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, _ := b.(float64)
		return x < y
	case string:
		y, _ := b.(string)
		return x < y
	}
	return false
}

func checkDays(value any, path string) error {
	f, ok := value.(float64)
	if !ok || f != math.Trunc(f) || f < 1 || f > 3660 {
		return errf(path, "want a whole number of days from 1 to 3660")
	}
	return nil
}

func checkScalar(t Type, x any, path string) error {
	switch t {
	case String, List:
		s, ok := x.(string)
		if !ok {
			return errf(path, "want text, got %s", describe(x))
		}
		if len(s) > 1000 {
			return errf(path, "text longer than 1000 bytes")
		}
	case Number:
		f, ok := x.(float64)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return errf(path, "want a number, got %s", describe(x))
		}
	case StaffRef:
		f, ok := x.(float64)
		if !ok || f != math.Trunc(f) || f < 1 {
			return errf(path, "want a staff id, got %s", describe(x))
		}
	case Bool:
		if _, ok := x.(bool); !ok {
			return errf(path, "want true or false, got %s", describe(x))
		}
	case Date, DateTime:
		s, ok := x.(string)
		if !ok {
			return errf(path, "want a date YYYY-MM-DD, got %s", describe(x))
		}
		if _, err := time.Parse("2006-01-02", s); err != nil {
			return errf(path, "want a date YYYY-MM-DD, got %q", s)
		}
	}
	return nil
}

func describe(x any) string {
	switch v := x.(type) {
	case nil:
		return "nothing"
	case string:
		return fmt.Sprintf("text %q", v)
	case float64:
		return fmt.Sprintf("number %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func (v *validator) tag(c *TagCond, path string) error {
	switch c.Match {
	case "any", "all", "none":
	default:
		return errf(join(path, "match"), "want any, all or none, got %q", c.Match)
	}
	if (len(c.IDs) == 0) == (c.Group == 0) {
		return errf(path, "give either ids or group")
	}
	if c.Group != 0 {
		if c.Match == "all" {
			return errf(join(path, "match"), "all of a group is not supported: list the tags in ids")
		}
		if !v.s.TagGroupExists(c.Group) {
			return errf(join(path, "group"), "no tag group %d", c.Group)
		}
	}
	for i, id := range c.IDs {
		if !v.s.TagExists(id) {
			return errf(fmt.Sprintf("%s.ids[%d]", path, i), "no tag %d", id)
		}
	}
	return nil
}

func checkWindow(w *Window, path string) error {
	if w == nil {
		return nil
	}
	if w.LastDays != 0 && (w.From != "" || w.To != "") {
		return errf(path, "give last_days or from/to, not both")
	}
	if w.LastDays < 0 || w.LastDays > 3660 {
		return errf(join(path, "last_days"), "want 1 to 3660 days")
	}
	if w.LastDays == 0 && w.From == "" && w.To == "" {
		return errf(path, "empty window: give last_days or from/to, or leave the window out")
	}
	for _, p := range []struct{ name, v string }{{"from", w.From}, {"to", w.To}} {
		if p.v != "" {
			if _, err := time.Parse("2006-01-02", p.v); err != nil {
				return errf(join(path, p.name), "want a date YYYY-MM-DD, got %q", p.v)
			}
		}
	}
	if w.From != "" && w.To != "" && w.To < w.From {
		return errf(path, "to is before from")
	}
	return nil
}

func (v *validator) event(c *EventCond, path string) error {
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		return errf(join(path, "name"), "want an event name")
	}
	if err := checkWindow(c.Window, join(path, "window")); err != nil {
		return err
	}
	for i, p := range c.Where {
		pp := fmt.Sprintf("%s.where[%d]", path, i)
		if p.Prop == "" || len(p.Prop) > 100 || strings.ContainsAny(p.Prop, "'\"\\$[]") {
			return errf(join(pp, "prop"), "want a property name (no quotes, brackets or $)")
		}
		if !contains(PropOperators, p.Cmp) {
			return errf(join(pp, "cmp"), "operator %q does not apply to properties; want one of %s", p.Cmp, strings.Join(PropOperators, ", "))
		}
		if err := checkProp(p, pp); err != nil {
			return err
		}
	}
	if len(c.Where) > 20 {
		return errf(join(path, "where"), "more than 20 property conditions")
	}
	switch c.Timing {
	case "":
		if c.Cmp != "" || c.Value != nil {
			return errf(path, "cmp and value go with timing first or last; use count to compare how often")
		}
		if c.Count != nil {
			if !contains([]string{"eq", "ne", "gt", "gte", "lt", "lte"}, c.Count.Cmp) {
				return errf(join(path, "count.cmp"), "want eq, ne, gt, gte, lt or lte")
			}
			if c.Count.Value < 0 || c.Count.Value != math.Trunc(c.Count.Value) || c.Count.Value > 1e6 {
				return errf(join(path, "count.value"), "want a whole number from 0")
			}
		}
	case "first", "last":
		if c.Count != nil {
			return errf(join(path, "count"), "count does not go with timing")
		}
		if c.Window != nil {
			return errf(join(path, "window"), "a window does not go with timing: compare the date with cmp")
		}
		return checkCmp(DateTime, c.Cmp, c.Value, path, "the "+c.Timing+" time")
	default:
		return errf(join(path, "timing"), "want first or last, got %q", c.Timing)
	}
	return nil
}

func checkProp(p PropCond, path string) error {
	vp := join(path, "value")
	switch p.Cmp {
	case "is_set", "is_not_set":
		if p.Value != nil {
			return errf(vp, "%s takes no value", p.Cmp)
		}
	case "in", "not_in":
		list, ok := p.Value.([]any)
		if !ok || len(list) == 0 {
			return errf(vp, "%s needs a non-empty list", p.Cmp)
		}
		for i, x := range list {
			if err := propScalar(x, fmt.Sprintf("%s[%d]", vp, i)); err != nil {
				return err
			}
		}
	case "gt", "gte", "lt", "lte":
		return checkScalar(Number, p.Value, vp)
	case "contains":
		return checkScalar(String, p.Value, vp)
	default:
		return propScalar(p.Value, vp)
	}
	return nil
}

func propScalar(x any, path string) error {
	switch x.(type) {
	case string, float64, bool:
		return nil
	}
	return errf(path, "want text, a number or true/false, got %s", describe(x))
}

func (v *validator) order(c *OrderCond, path string) error {
	t, ok := OrderMetrics[c.Metric]
	if !ok {
		return errf(join(path, "metric"), "want count, total, avg, first_at or last_at, got %q", c.Metric)
	}
	if t == DateTime && c.Window != nil {
		return errf(join(path, "window"), "a window does not go with %s: compare the date with cmp", c.Metric)
	}
	if err := checkWindow(c.Window, join(path, "window")); err != nil {
		return err
	}
	return checkCmp(t, c.Cmp, c.Value, path, "order "+c.Metric)
}

func (v *validator) habit(c *HabitCond, path string) error {
	r, ok := HabitKinds[c.Kind]
	if !ok {
		return errf(join(path, "kind"), "want active_hour, buy_hour, active_weekday or buy_weekday, got %q", c.Kind)
	}
	if len(c.In) == 0 {
		return errf(join(path, "in"), "want at least one value")
	}
	for i, x := range c.In {
		if x < r[0] || x > r[1] {
			return errf(fmt.Sprintf("%s.in[%d]", path, i), "want %d to %d, got %d", r[0], r[1], x)
		}
	}
	return nil
}

func (v *validator) segment(id int64, path string, depth int, stack []int64) error {
	if id < 0 {
		return errf(path, "want a segment id")
	}
	if id == v.self {
		return errf(path, "segment %d refers to itself", id)
	}
	for _, s := range stack {
		if s == id {
			return &Error{Path: path, Msg: "segments refer to each other in a cycle: " + cycleString(append(stack, id)), cycle: true}
		}
	}
	tree, ok := v.s.SegmentTree(id)
	if !ok {
		return errf(path, "no segment %d", id)
	}
	stack = append(stack, id)
	// A referenced segment's own nodes are checked for cycles and depth, with errors placed
	// at the reference.
	if err := v.node(tree, "", depth+1, stack); err != nil {
		if e, ok := err.(*Error); ok {
			return referenced(path, id, e)
		}
		return err
	}
	return nil
}

// referenced places an error found inside segment id at the reference's path, naming the chain
// of segments once: "segment 2 → segment 3, at children[0].field: unknown field …". A cycle
// already names every segment in it and is passed on as it is.
func referenced(path string, id int64, e *Error) *Error {
	if e.cycle {
		return &Error{Path: path, Msg: e.Msg, cycle: true}
	}
	out := &Error{Path: path, via: append([]int64{id}, e.via...), innerAt: e.Path, innerMsg: e.Msg}
	if len(e.via) > 0 {
		out.innerAt, out.innerMsg = e.innerAt, e.innerMsg
	}
	chain := make([]string, len(out.via))
	for i, s := range out.via {
		chain[i] = fmt.Sprintf("segment %d", s)
	}
	out.Msg = strings.Join(chain, " → ")
	if out.innerAt != "" {
		out.Msg += ", at " + out.innerAt
	}
	out.Msg += ": " + out.innerMsg
	return out
}

func cycleString(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, " → ")
}
