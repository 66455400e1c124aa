package segment

import (
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
)

type fakeSchema struct {
	attrs    map[string]customer.AttrType
	segments map[int64]string
}

func (f fakeSchema) AttrType(k string) (customer.AttrType, bool) { t, ok := f.attrs[k]; return t, ok }
func (f fakeSchema) TagExists(id int64) bool                     { return id > 0 && id < 100 }
func (f fakeSchema) TagGroupExists(id int64) bool                { return id > 0 && id < 10 }
func (f fakeSchema) SegmentTree(id int64) (*Node, bool) {
	s, ok := f.segments[id]
	if !ok {
		return nil, false
	}
	n, err := Parse([]byte(s))
	return n, err == nil
}

var schema = fakeSchema{
	attrs: map[string]customer.AttrType{"income": customer.AttrNumber, "hobbies": customer.AttrList, "vip": customer.AttrBool, "joined": customer.AttrDate, "level": customer.AttrString},
	segments: map[int64]string{
		1: `{"field":"gender","cmp":"eq","value":"female"}`,
		2: `{"segment":3}`,
		3: `{"op":"and","children":[{"segment":2}]}`,
		4: `{"segment":5}`,
		5: `{"field":"source","cmp":"eq","value":"抖音"}`,
		6: `{"op":"or","children":[{"segment":7}]}`,
		7: `{"op":"and","children":[{"field":"gender","cmp":"is_set"},{"field":"shoe_size","cmp":"eq","value":1}]}`,
	},
}

func TestValidTrees(t *testing.T) {
	for _, src := range []string{
		`{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"field":"attrs.income","cmp":"between","value":[5000,20000]}]}`,
		`{"op":"or","children":[{"tag":{"match":"any","ids":[1,2]}},{"tag":{"match":"none","group":3}}]}`,
		`{"op":"not","children":[{"event":{"name":"加企微","count":{"cmp":"gte","value":2},"window":{"last_days":30}}}]}`,
		`{"event":{"name":"Order Completed","where":[{"prop":"channel","cmp":"in","value":["小程序","门店"]}],"window":{"from":"2026-01-01","to":"2026-03-31"}}}`,
		`{"event":{"name":"问卷","timing":"last","cmp":"in_last_days","value":7}}`,
		`{"order":{"metric":"total","window":{"last_days":90},"cmp":"gte","value":500}}`,
		`{"order":{"metric":"last_at","cmp":"more_than_days_ago","value":60}}`,
		`{"habit":{"kind":"active_hour","in":[20,21,22]}}`,
		`{"field":"birthday","cmp":"anniversary_in_next_days","value":7}`,
		`{"field":"created_at","cmp":"more_than_days_ago","value":30}`,
		`{"field":"attrs.hobbies","cmp":"contains_all","value":["瑜伽","跑步"]}`,
		`{"field":"owner","cmp":"in","value":[3,4]}`,
		`{"field":"opted_out","cmp":"contains","value":"sms"}`,
		`{"segment":4}`,
		`{"field":"phone","cmp":"is_not_set"}`,
	} {
		n, err := Parse([]byte(src))
		if err == nil {
			err = Validate(n, schema, 0)
		}
		if err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func TestInvalidTreesNameTheNode(t *testing.T) {
	for _, tc := range []struct{ src, path, msg string }{
		{`{"field":"shoe_size","cmp":"eq","value":1}`, "field", "unknown field"},
		{`{"field":"attrs.nope","cmp":"eq","value":1}`, "field", "unknown attribute"},
		{`{"field":"income","cmp":"gt","value":1}`, "field", `the custom attribute is "attrs.income"`},
		{`{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"field":"attrs.income","cmp":"contains","value":"x"}]}`, "children[1].cmp", "does not apply"},
		{`{"field":"attrs.income","cmp":"gt","value":"lots"}`, "value", "want a number"},
		{`{"field":"attrs.income","cmp":"between","value":[9,1]}`, "value", "low is above high"},
		{`{"op":"xor","children":[]}`, "op", "unknown operator"},
		{`{"op":"not","children":[{"segment":1},{"segment":1}]}`, "", "exactly one child"},
		{`{"tag":{"match":"any","ids":[1,500]}}`, "tag.ids[1]", "no tag 500"},
		{`{"event":{"name":"x","count":{"cmp":"gte","value":-1}}}`, "event.count.value", "whole number"},
		{`{"event":{"name":"x","window":{"last_days":0,"from":"2026-13-01"}}}`, "event.window.from", "want a date"},
		{`{"habit":{"kind":"active_hour","in":[24]}}`, "habit.in[0]", "0 to 23"},
		{`{"segment":2}`, "segment", "cycle"},
		{`{"segment":99}`, "segment", "no segment"},
		{`{"field":"gender","cmp":"eq","value":"female","tag":{"match":"any","ids":[1]}}`, "", "mixes"},
		{`{}`, "", "no condition"},
		{`{"field":"gender","cmp":"eq","value":"f","extra":1}`, "extra", "unknown key \"extra\""},
		{`{"op":"or","children":[{"field":"gender","cmp":"is_set"},{"not":{"segment":1}}]}`, "children[1].not", "unknown key"},
		{`{"event":{"name":"x","where":[{"prop":"a","cmp":"eq","value":1},{"prop":"b","op":"eq"}]}}`, "event.where[1].op", "unknown key"},
		{`{"order":{"metric":"count","cmp":"gte","value":1,"window":{"days":7}}}`, "order.window.days", "want last_days, from, to"},
	} {
		n, err := Parse([]byte(tc.src))
		if err == nil {
			err = Validate(n, schema, 0)
		}
		e, ok := err.(*Error)
		if !ok || e.Path != tc.path || !strings.Contains(e.Msg, tc.msg) {
			t.Errorf("%s: got %v, want path %q and %q", tc.src, err, tc.path, tc.msg)
		}
	}
}

func TestSelfReferenceRefused(t *testing.T) {
	n, _ := Parse([]byte(`{"op":"or","children":[{"segment":4}]}`))
	if err := Validate(n, schema, 5); err == nil || !strings.Contains(err.Error(), "refers to itself") {
		t.Fatalf("segment 5 using 4 which uses 5: %v", err)
	}
}

func TestHostileTreesAreRefusedCheaply(t *testing.T) {
	deep := strings.Repeat(`{"op":"not","children":[`, 10000) + `{"field":"gender","cmp":"is_set"}` + strings.Repeat(`]}`, 10000)
	if _, err := Parse([]byte(deep)); err == nil || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("10,000-deep tree: %v", err)
	}
	big := `{"op":"or","children":[` + strings.Repeat(`{"field":"name","cmp":"eq","value":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`, 100000) + `{"field":"name","cmp":"is_set"}]}`
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("5 MB tree: %v", err)
	}
	wide := `{"op":"or","children":[` + strings.Repeat(`{"field":"name","cmp":"is_set"},`, 3000) + `{"field":"name","cmp":"is_set"}]}`
	n, err := Parse([]byte(wide))
	if err == nil {
		err = Validate(n, schema, 0)
	}
	if err == nil || !strings.Contains(err.Error(), "nodes") {
		t.Fatalf("3000-node tree: %v", err)
	}
}

func TestAnniversariesCrossYearAndLeapDay(t *testing.T) {
	today := DayOfDate(2026, 12, 29)
	keys := Anniversaries(today, 7)
	for _, md := range []int{1229, 1231, 101, 104} {
		if !keys[md] {
			t.Errorf("%d missing from the next 7 days of 2026-12-29", md)
		}
	}
	if keys[105] {
		t.Error("0105 is 8 days out")
	}
	if !Anniversaries(DayOfDate(2027, 2, 28), 1)[229] {
		t.Error("29 Feb birthdays count on 28 Feb in a common year")
	}
}

// An error inside a referenced segment names the chain of segments once and the node inside
// the innermost one; a cycle names its segments once.
func TestErrorsInReferencedSegmentsReadPlainly(t *testing.T) {
	for _, tc := range []struct{ src, path, msg string }{
		{`{"segment":2}`, "segment", "segments refer to each other in a cycle: 2 → 3 → 2"},
		{`{"op":"and","children":[{"segment":6}]}`, "children[0].segment", `segment 6 → segment 7, at children[1].field: unknown field "shoe_size"`},
	} {
		n, err := Parse([]byte(tc.src))
		if err == nil {
			err = Validate(n, schema, 0)
		}
		e, ok := err.(*Error)
		if !ok || e.Path != tc.path || !strings.HasPrefix(e.Msg, tc.msg) {
			t.Errorf("%s: got %v, want path %q and message starting %q", tc.src, err, tc.path, tc.msg)
		}
	}
}
