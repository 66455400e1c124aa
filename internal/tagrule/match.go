package tagrule

import (
	"encoding/json"
	"strings"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// MatchProps reports whether event properties satisfy every condition. The semantics are
// those of the segment SQL evaluator, so a rule and a segment over the same event agree:
// properties are top-level keys; eq and in compare with the value's own type (text with
// text, a number with a number, true/false with a bool); ne and not_in are the negations of
// eq and in, so a missing property is "not equal"; contains is a case-sensitive substring of
// a text property; gt, gte, lt and lte need a number property; is_set means present and not
// null.
func MatchProps(props map[string]any, where []segment.PropCond) bool {
	for _, c := range where {
		if !matchProp(props[c.Prop], c) {
			return false
		}
	}
	return true
}

func matchProp(v any, c segment.PropCond) bool {
	switch c.Cmp {
	case "eq":
		return propEqual(v, c.Value)
	case "ne":
		return !propEqual(v, c.Value)
	case "in":
		return propIn(v, c.Value)
	case "not_in":
		return !propIn(v, c.Value)
	case "contains":
		s, ok := v.(string)
		sub, _ := c.Value.(string)
		return ok && strings.Contains(s, sub)
	case "gt", "gte", "lt", "lte":
		x, ok := number(v)
		want, _ := c.Value.(float64)
		if !ok {
			return false
		}
		switch c.Cmp {
		case "gt":
			return x > want
		case "gte":
			return x >= want
		case "lt":
			return x < want
		}
		return x <= want
	case "is_set":
		return v != nil
	case "is_not_set":
		return v == nil
	}
	return false
}

func propIn(v, list any) bool {
	l, _ := list.([]any)
	for _, want := range l {
		if propEqual(v, want) {
			return true
		}
	}
	return false
}

// propEqual compares a property with a condition value of the same JSON type.
func propEqual(v, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := v.(string)
		return ok && s == w
	case float64:
		x, ok := number(v)
		return ok && x == w
	case bool:
		b, ok := v.(bool)
		return ok && b == w
	}
	return false
}

// number reads a JSON number in any of the forms a decoder leaves it in.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
