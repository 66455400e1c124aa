// Package segment defines the condition tree that selects customers (人群): its JSON form,
// the fields and operators it understands, and validation with precise errors. The audience
// engine (package audience) evaluates trees over bitmaps; store.SegmentSQL evaluates the same
// tree as SQL, and tests hold the two to the same answers.
package segment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Node is one node of a tree: a group (Op with Children) or a leaf (exactly one of Field,
// Tag, Event, Order, Habit, Segment).
type Node struct {
	Op       string  `json:"op,omitempty"` // "and", "or", "not" (not takes one child)
	Children []*Node `json:"children,omitempty"`

	// Field compares a profile field or a custom attribute ("attrs.KEY") with Cmp and Value.
	Field string `json:"field,omitempty"`
	Cmp   string `json:"cmp,omitempty"`
	Value any    `json:"value,omitempty"`

	Tag     *TagCond   `json:"tag,omitempty"`
	Event   *EventCond `json:"event,omitempty"`
	Order   *OrderCond `json:"order,omitempty"`
	Habit   *HabitCond `json:"habit,omitempty"`
	Segment int64      `json:"segment,omitempty"` // membership of a saved segment
}

// TagCond tests tags: Match "any", "all" or "none" of IDs, or of every tag in Group.
type TagCond struct {
	Match string  `json:"match"`
	IDs   []int64 `json:"ids,omitempty"`
	Group int64   `json:"group,omitempty"`
}

// EventCond tests what a customer did. By default it counts events named Name (matching
// Where) in Window and compares the count (default: at least once). With Timing "first" or
// "last" it compares the date of the first or last such event instead, with Cmp and Value as
// for a date field.
type EventCond struct {
	Name   string     `json:"name"`
	Where  []PropCond `json:"where,omitempty"`
	Count  *Compare   `json:"count,omitempty"`
	Window *Window    `json:"window,omitempty"`
	Timing string     `json:"timing,omitempty"`
	Cmp    string     `json:"cmp,omitempty"`
	Value  any        `json:"value,omitempty"`
}

// PropCond compares one event property (text or number).
type PropCond struct {
	Prop  string `json:"prop"`
	Cmp   string `json:"cmp"`
	Value any    `json:"value,omitempty"`
}

// Compare is a numeric comparison: Cmp is eq, ne, gt, gte, lt or lte.
type Compare struct {
	Cmp   string  `json:"cmp"`
	Value float64 `json:"value"`
}

// Window bounds a time range in whole days of the workspace time zone: the last LastDays
// days including today, or From..To inclusive (YYYY-MM-DD; either may be open).
type Window struct {
	LastDays int    `json:"last_days,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
}

// OrderCond tests a customer's paid orders (fully refunded orders do not count; amounts are
// net of refunds, in major units such as yuan). Metric count, total and avg compare numbers
// over Window; first_at and last_at compare dates as a date field does.
type OrderCond struct {
	Metric string  `json:"metric"`
	Window *Window `json:"window,omitempty"`
	Cmp    string  `json:"cmp"`
	Value  any     `json:"value,omitempty"`
}

// HabitCond tests when a customer is usually active or buys: Kind active_hour or buy_hour
// (0–23) or active_weekday or buy_weekday (1 = Monday … 7 = Sunday), in In.
type HabitCond struct {
	Kind string `json:"kind"`
	In   []int  `json:"in"`
}

// Limits on a tree.
const (
	MaxDepth = 32
	MaxNodes = 2000
	MaxBytes = 1 << 20
)

// Parse decodes a tree from JSON, refusing unknown keys, trees over MaxBytes and nesting
// deeper than MaxDepth before decoding (so a hostile 10,000-deep tree costs nothing).
func Parse(data []byte) (*Node, error) {
	if len(data) > MaxBytes {
		return nil, &Error{Path: "", Msg: fmt.Sprintf("tree is %d bytes, more than %d", len(data), MaxBytes)}
	}
	if d := jsonDepth(data); d > 3*MaxDepth+8 { // each level is an object inside an array
		return nil, &Error{Path: "", Msg: fmt.Sprintf("tree nests deeper than %d levels", MaxDepth)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var n Node
	if err := dec.Decode(&n); err != nil {
		var generic any
		if json.Unmarshal(data, &generic) == nil {
			if e := unknownKey(generic, reflect.TypeOf(Node{}), ""); e != nil {
				return nil, e // name the node, not just the key
			}
		}
		return nil, &Error{Path: "", Msg: "invalid JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &Error{Path: "", Msg: "invalid JSON: data after the tree"}
	}
	normalizeNumbers(&n)
	return &n, nil
}

// unknownKey finds the first key of v (decoded JSON) that struct type t has no member for,
// walking nested nodes and conditions, and names it with its path (children[2].not).
func unknownKey(v any, t reflect.Type, path string) *Error {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields[name] = t.Field(i).Type
		names = append(names, name)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			return &Error{Path: join(path, k), Msg: fmt.Sprintf("unknown key %q (want %s)", k, strings.Join(names, ", "))}
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			if e := unknownKey(obj[k], ft, join(path, k)); e != nil {
				return e
			}
		case ft.Kind() == reflect.Slice && (ft.Elem().Kind() == reflect.Struct || ft.Elem().Kind() == reflect.Pointer):
			et := ft.Elem()
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			items, _ := obj[k].([]any)
			for i, item := range items {
				if e := unknownKey(item, et, join(path, fmt.Sprintf("%s[%d]", k, i))); e != nil {
					return e
				}
			}
		}
	}
	return nil
}

// jsonDepth returns the deepest nesting of brackets outside strings.
func jsonDepth(b []byte) int {
	depth, max, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			if depth > max {
				max = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return max
}

// normalizeNumbers turns json.Number values into float64 so evaluators see one number type.
func normalizeNumbers(n *Node) {
	n.Value = normValue(n.Value)
	if n.Event != nil {
		n.Event.Value = normValue(n.Event.Value)
		for i := range n.Event.Where {
			n.Event.Where[i].Value = normValue(n.Event.Where[i].Value)
		}
	}
	if n.Order != nil {
		n.Order.Value = normValue(n.Order.Value)
	}
	for _, c := range n.Children {
		if c != nil {
			normalizeNumbers(c)
		}
	}
}

func normValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case []any:
		for i := range x {
			x[i] = normValue(x[i])
		}
	}
	return v
}

// Error is a validation error at a path in the tree, e.g. "children[2].event.count.value".
type Error struct {
	Path string `json:"path"`
	Msg  string `json:"message"`

	// An error inside a referenced segment keeps, for the next reference out, the chain of
	// segments it was found through and the innermost path and message.
	via      []int64
	innerAt  string
	innerMsg string
	cycle    bool
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Walk calls fn for n and every node below it, depth first.
func Walk(n *Node, fn func(*Node)) {
	if n == nil {
		return
	}
	fn(n)
	for _, c := range n.Children {
		Walk(c, fn)
	}
}

// String renders a tree compactly for logs.
func (n *Node) String() string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Kind names the kind of a node: "group", "field", "tag", "event", "order", "habit",
// "segment" or "" when no kind is set.
func (n *Node) Kind() string {
	var kinds []string
	if n.Op != "" {
		kinds = append(kinds, "group")
	}
	if n.Field != "" {
		kinds = append(kinds, "field")
	}
	if n.Tag != nil {
		kinds = append(kinds, "tag")
	}
	if n.Event != nil {
		kinds = append(kinds, "event")
	}
	if n.Order != nil {
		kinds = append(kinds, "order")
	}
	if n.Habit != nil {
		kinds = append(kinds, "habit")
	}
	if n.Segment != 0 {
		kinds = append(kinds, "segment")
	}
	if len(kinds) != 1 {
		return strings.Join(kinds, "+")
	}
	return kinds[0]
}
