package tagrule

import (
	"encoding/json"
	"testing"

	"github.com/siyu-scrm/siyu/internal/segment"
)

func TestMatchProps(t *testing.T) {
	props := map[string]any{"sku": "A-100", "total": 129.5, "qty": json.Number("3"), "gift": true, "note": nil, "tags": []any{"x"}}
	for _, tc := range []struct {
		cmp   string
		prop  string
		value any
		want  bool
	}{
		{"eq", "sku", "A-100", true},
		{"eq", "sku", "a-100", false},
		{"eq", "total", 129.5, true},
		{"eq", "total", "129.5", false}, // types must agree, as in SQL
		{"eq", "qty", 3.0, true},
		{"eq", "gift", true, true},
		{"eq", "gift", false, false},
		{"eq", "missing", "x", false},
		{"ne", "sku", "B", true},
		{"ne", "sku", "A-100", false},
		{"ne", "missing", "x", true},
		{"in", "sku", []any{"B", "A-100"}, true},
		{"in", "total", []any{1.0, 2.0}, false},
		{"not_in", "sku", []any{"B"}, true},
		{"not_in", "missing", []any{"B"}, true},
		{"contains", "sku", "-10", true},
		{"contains", "sku", "a-", false},
		{"contains", "total", "12", false},
		{"gt", "total", 100.0, true},
		{"gte", "total", 129.5, true},
		{"lt", "total", 129.5, false},
		{"lte", "qty", 3.0, true},
		{"gt", "sku", 1.0, false},
		{"gt", "missing", 1.0, false},
		{"is_set", "sku", nil, true},
		{"is_set", "note", nil, false},
		{"is_set", "missing", nil, false},
		{"is_not_set", "note", nil, true},
		{"is_not_set", "tags", nil, false},
		{"between", "total", nil, false},
	} {
		got := MatchProps(props, []segment.PropCond{{Prop: tc.prop, Cmp: tc.cmp, Value: tc.value}})
		if got != tc.want {
			t.Errorf("%s %s %v: got %v, want %v", tc.prop, tc.cmp, tc.value, got, tc.want)
		}
	}
	if !MatchProps(nil, nil) || MatchProps(props, []segment.PropCond{{Prop: "sku", Cmp: "is_set"}, {Prop: "total", Cmp: "lt", Value: 1.0}}) {
		t.Error("conditions are all required")
	}
}
