package store_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/segment/segmenttest"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// cst parses a Shanghai wall-clock time: "2006-01-02 15:04", with seconds or milliseconds.
func cst(s string) time.Time {
	for _, layout := range []string{"2006-01-02 15:04:05.000", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, segment.Shanghai); err == nil {
			return t
		}
	}
	panic("bad time " + s)
}

// segNow is the clock of the hand-built cases: Sunday 2026-03-15 10:00 in Shanghai (02:00 UTC).
var segNow = cst("2026-03-15 10:00")

// segData is a hand-built data set; every expectation below is worked out from it.
func segData() *segmenttest.Data {
	d := &segmenttest.Data{
		Staff: 3,
		AttrDefs: []customer.AttrDef{
			{Key: "level", Type: customer.AttrString}, {Key: "income", Type: customer.AttrNumber},
			{Key: "vip", Type: customer.AttrBool}, {Key: "joined", Type: customer.AttrDate},
			{Key: "hobbies", Type: customer.AttrList}, {Key: "a.b", Type: customer.AttrString},
		},
		TagGroups: []segmenttest.TagGroup{{ID: 1, Name: "兴趣"}, {ID: 2, Name: "状态"}, {ID: 3, Name: "空组"}},
		Tags: []segmenttest.Tag{
			{ID: 1, Group: 1, Name: "跑步"}, {ID: 2, Group: 1, Name: "瑜伽"},
			{ID: 3, Group: 2, Name: "新客"}, {ID: 4, Group: 2, Name: "老客"}, {ID: 5, Group: 3, Name: "无人"},
		},
		CustomerTags: map[int64][]int64{1: {1, 2, 3}, 2: {2}, 3: {4}, 8: {1}, 6: {1, 2, 3, 4}},
		Segments: []segmenttest.Segment{
			{ID: 1, Name: "女性", Tree: mustParse(`{"field":"gender","cmp":"eq","value":"female"}`)},
			{ID: 2, Name: "上海女性", Tree: mustParse(`{"op":"and","children":[{"segment":1},{"field":"region","cmp":"eq","value":"上海"}]}`)},
			{ID: 3, Name: "上海女性或老客", Tree: mustParse(`{"op":"or","children":[{"segment":2},{"tag":{"match":"any","ids":[4]}}]}`)},
		},
	}
	add := func(c *customer.Customer) { d.Customers = append(d.Customers, c) }
	add(&customer.Customer{ID: 1, Name: "张三", Gender: "female", Birthday: "1990-03-20", Region: "上海", Phone: "13800000001", Source: "抖音", OwnerID: 1,
		Attrs:   map[string]any{"level": "gold", "income": 8000.0, "vip": true, "joined": "2025-01-10", "hobbies": []string{"跑步", "瑜伽"}},
		OptOuts: []string{"sms"}, CreatedAt: cst("2025-06-01 10:00"), LastSeenAt: cst("2026-03-15 09:00")})
	add(&customer.Customer{ID: 2, Name: "李四", Gender: "male", Birthday: "1985-12-01", Region: "北京", Phone: "13900000002", Email: "li@example.com", Source: "小红书", OwnerID: 2,
		Attrs:   map[string]any{"level": "silver", "income": 12000.5, "vip": false, "hobbies": []string{"阅读"}},
		OptOuts: []string{"sms", "email"}, CreatedAt: cst("2026-03-14 23:30")})
	add(&customer.Customer{ID: 3, Name: "王五", Birthday: "2000-02-29", Attrs: map[string]any{"income": 5000.0, "a.b": "dot"},
		CreatedAt: cst("2026-03-15 00:10"), LastSeenAt: cst("2026-03-08 23:59:59")})
	add(&customer.Customer{ID: 4, Name: "Zhao 100%_x", Gender: "female", Region: "广州", Email: "z@x.com", Source: "抖音直播", OwnerID: 1,
		Attrs: map[string]any{"level": "Gold", "joined": "2026-03-20", "hobbies": []string{}}, CreatedAt: cst("2024-01-01 00:00"), LastSeenAt: cst("2026-03-09 00:00")})
	add(&customer.Customer{ID: 5, Name: "O'Brien; DROP TABLE customers;--", Gender: "male", Birthday: "1999-03-15", Source: "渠道'活码", OwnerID: 3,
		Attrs: map[string]any{"level": "?", "income": -3.0}, CreatedAt: cst("2025-12-31 23:59:59"), LastSeenAt: cst("2026-02-13 12:00")})
	// 6 was merged into 1 and matches almost everything: it must never appear.
	add(&customer.Customer{ID: 6, Name: "张三", Gender: "female", Birthday: "1990-03-20", Region: "上海", Source: "抖音", OwnerID: 1,
		Attrs:   map[string]any{"level": "gold", "income": 8000.0, "vip": true, "hobbies": []string{"瑜伽"}},
		OptOuts: []string{"sms"}, CreatedAt: cst("2026-03-15 00:10"), LastSeenAt: cst("2026-03-15 09:00"), MergedInto: 1})
	add(&customer.Customer{ID: 7, CreatedAt: cst("2026-01-01 00:00")})
	add(&customer.Customer{ID: 8, Name: "Eve", Gender: "female", Birthday: "1992-03-16", Region: "上海", Source: "抖音", OwnerID: 2,
		Attrs:   map[string]any{"income": 8000.0, "vip": true, "hobbies": []string{"瑜伽", "游泳"}},
		OptOuts: []string{"wecom_private"}, CreatedAt: cst("2026-02-13 00:00"), LastSeenAt: cst("2026-03-14 12:00")})
	add(&customer.Customer{ID: 9, Name: "Frank", Gender: "male", Birthday: "1988-02-28", Attrs: map[string]any{"level": "gold"}, CreatedAt: cst("2025-03-15 12:00")})
	add(&customer.Customer{ID: 10, Name: "Grace", Gender: "female", Birthday: "1995-03-01", OwnerID: 3, CreatedAt: cst("2026-03-01 00:00")})
	for id := int64(11); id <= 20; id++ {
		add(&customer.Customer{ID: id, Name: fmt.Sprintf("C%d", id), CreatedAt: cst("2025-01-01 00:00")})
	}

	n := 0
	ev := func(cid int64, name, at string, props map[string]any) {
		n++
		d.Events = append(d.Events, &event.Event{MessageID: fmt.Sprintf("m%d", n), CustomerID: cid, Type: "track", Name: name, Properties: props, Timestamp: cst(at)})
	}
	ev(11, "purchase", "2026-03-15 00:00:00.000", map[string]any{"channel": "小程序", "amount": 100.0, "vip": true})
	ev(11, "purchase", "2026-03-08 23:59:59.999", map[string]any{"channel": "门店", "amount": 50.5})
	ev(11, "purchase", "2026-03-09 00:00:00.000", map[string]any{"channel": "小程序", "amount": "100"})
	ev(12, "purchase", "2026-03-14 23:59:59", map[string]any{"channel": "app'; --", "amount": 200.0, "note": nil})
	for range 3 {
		ev(12, "view", "2026-03-10 10:00", nil)
	}
	ev(13, "view", "2026-03-15 08:00", map[string]any{"page": "home", "a.b": 1.0, "utm source": "wx", "what?": "yes"})
	ev(13, "view", "2025-03-15 08:00", map[string]any{"page": "product/1"})
	ev(14, "purchase", "2026-01-05 12:00", map[string]any{"channel": "门店"})
	ev(1, "view", "2026-03-14 20:00", map[string]any{"page": "home"})
	ev(1, "view", "2026-03-15 09:00", map[string]any{"page": "home"})
	ev(6, "purchase", "2026-03-15 09:00", map[string]any{"channel": "小程序", "amount": 100.0})
	ev(6, "view", "2026-03-15 09:00", nil)
	// 19: the two events at 23:xx fall a day before the 90-day habit window.
	ev(19, "ping", "2025-12-15 23:00", nil)
	ev(19, "ping", "2025-12-15 23:30", nil)
	ev(19, "ping", "2026-03-10 03:00", nil)
	ev(19, "ping", "2026-03-11 03:30", nil)
	ev(19, "ping", "2026-03-12 05:00", nil)

	order := func(id string, cid int64, at string, amount, refunded int64) {
		status := event.Paid
		switch {
		case refunded >= amount && refunded > 0:
			status = event.Refunded
		case refunded > 0:
			status = event.PartiallyRefunded
		}
		d.Orders = append(d.Orders, &event.Order{OrderID: id, CustomerID: cid, Status: status, AmountMinor: amount, RefundedMinor: refunded, Currency: "CNY", PaidAt: cst(at)})
	}
	order("O1", 15, "2026-03-10 12:00", 10000, 0)
	order("O2", 15, "2026-03-15 00:00", 5050, 1050)
	order("O3", 15, "2026-03-01 12:00", 9999, 9999)
	order("O4", 16, "2025-12-01 08:00", 0, 0)
	order("O5", 17, "2026-03-14 23:59:59.999", 3333, 0)
	order("O6", 17, "2026-03-14 10:00", 3334, 0)
	order("O7", 18, "2026-02-01 12:00", 5000, 5000)
	order("O8", 12, "2025-03-15 10:00", 20000, 0)
	order("O9", 6, "2026-03-15 09:00", 99900, 0)
	return d
}

func mustParse(s string) *segment.Node {
	n, err := segment.Parse([]byte(s))
	if err != nil {
		panic(fmt.Sprintf("%s: %v", s, err))
	}
	return n
}

// universe is every customer not merged away in segData.
var universe = []int64{1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}

func ids(xs ...int64) []int64 { return xs }

// but is the universe without xs.
func but(xs ...int64) []int64 {
	var out []int64
	for _, id := range universe {
		if !slices.Contains(xs, id) {
			out = append(out, id)
		}
	}
	return out
}

type segCase struct {
	name string
	tree string
	want []int64
	now  time.Time      // zero: segNow
	loc  *time.Location // nil: Shanghai
}

var segCases = []segCase{
	// Strings: case-sensitive, literal; complements include the unset.
	{"name eq", `{"field":"name","cmp":"eq","value":"张三"}`, ids(1), time.Time{}, nil},
	{"name ne", `{"field":"name","cmp":"ne","value":"张三"}`, but(1), time.Time{}, nil},
	{"name in", `{"field":"name","cmp":"in","value":["张三","Eve","nobody"]}`, ids(1, 8), time.Time{}, nil},
	{"name not_in", `{"field":"name","cmp":"not_in","value":["张三","Eve","nobody"]}`, but(1, 8), time.Time{}, nil},
	{"name contains LIKE wildcards literally", `{"field":"name","cmp":"contains","value":"100%_"}`, ids(4), time.Time{}, nil},
	{"name contains _", `{"field":"name","cmp":"contains","value":"_"}`, ids(4), time.Time{}, nil},
	{"name contains a", `{"field":"name","cmp":"contains","value":"a"}`, ids(4, 9, 10), time.Time{}, nil},
	{"name not_contains a", `{"field":"name","cmp":"not_contains","value":"a"}`, but(4, 9, 10), time.Time{}, nil},
	{"name starts_with", `{"field":"name","cmp":"starts_with","value":"Zh"}`, ids(4), time.Time{}, nil},
	{"name starts_with is case-sensitive", `{"field":"name","cmp":"starts_with","value":"zh"}`, nil, time.Time{}, nil},
	{"name is_set", `{"field":"name","cmp":"is_set"}`, but(7), time.Time{}, nil},
	{"name is_not_set", `{"field":"name","cmp":"is_not_set"}`, ids(7), time.Time{}, nil},
	{"gender eq empty matches nobody", `{"field":"gender","cmp":"eq","value":""}`, nil, time.Time{}, nil},
	{"gender ne empty matches everybody", `{"field":"gender","cmp":"ne","value":""}`, universe, time.Time{}, nil},
	{"gender ne female", `{"field":"gender","cmp":"ne","value":"female"}`, but(1, 4, 8, 10), time.Time{}, nil},
	{"source in", `{"field":"source","cmp":"in","value":["抖音","小红书"]}`, ids(1, 2, 8), time.Time{}, nil},
	{"source starts_with", `{"field":"source","cmp":"starts_with","value":"抖音"}`, ids(1, 4, 8), time.Time{}, nil},
	{"phone is_set", `{"field":"phone","cmp":"is_set"}`, ids(1, 2), time.Time{}, nil},
	{"email contains", `{"field":"email","cmp":"contains","value":"@x."}`, ids(4), time.Time{}, nil},
	{"region eq", `{"field":"region","cmp":"eq","value":"上海"}`, ids(1, 8), time.Time{}, nil},
	{"attr string eq", `{"field":"attrs.level","cmp":"eq","value":"gold"}`, ids(1, 9), time.Time{}, nil},
	{"attr string ne", `{"field":"attrs.level","cmp":"ne","value":"gold"}`, but(1, 9), time.Time{}, nil},
	{"attr string starts_with", `{"field":"attrs.level","cmp":"starts_with","value":"G"}`, ids(4), time.Time{}, nil},
	{"attr string is_set", `{"field":"attrs.level","cmp":"is_set"}`, ids(1, 2, 4, 5, 9), time.Time{}, nil},
	{"attr string is_not_set", `{"field":"attrs.level","cmp":"is_not_set"}`, but(1, 2, 4, 5, 9), time.Time{}, nil},
	{"attr key with a dot", `{"field":"attrs.a.b","cmp":"eq","value":"dot"}`, ids(3), time.Time{}, nil},

	// SQL meta-characters in values are data.
	{"meta quote in eq", `{"field":"name","cmp":"eq","value":"O'Brien; DROP TABLE customers;--"}`, ids(5), time.Time{}, nil},
	{"meta quote in contains", `{"field":"source","cmp":"contains","value":"'"}`, ids(5), time.Time{}, nil},
	{"meta placeholder", `{"field":"attrs.level","cmp":"in","value":["?","$1"]}`, ids(5), time.Time{}, nil},
	{"meta placeholder contains", `{"field":"attrs.level","cmp":"contains","value":"?"}`, ids(5), time.Time{}, nil},
	{"meta injection", `{"field":"name","cmp":"eq","value":"x' OR '1'='1"}`, nil, time.Time{}, nil},
	{"meta backslash and dollar", `{"field":"name","cmp":"contains","value":"\\' $1 ?"}`, nil, time.Time{}, nil},
	{"meta event name", `{"event":{"name":"x' OR '1'='1"}}`, nil, time.Time{}, nil},
	{"meta event property", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"eq","value":"app'; --"}]}}`, ids(12), time.Time{}, nil},
	{"meta property name", `{"event":{"name":"view","where":[{"prop":"what?","cmp":"eq","value":"yes"}]}}`, ids(13), time.Time{}, nil},

	// Numbers.
	{"number eq", `{"field":"attrs.income","cmp":"eq","value":8000}`, ids(1, 8), time.Time{}, nil},
	{"number ne", `{"field":"attrs.income","cmp":"ne","value":8000}`, but(1, 8), time.Time{}, nil},
	{"number gt", `{"field":"attrs.income","cmp":"gt","value":5000}`, ids(1, 2, 8), time.Time{}, nil},
	{"number gte", `{"field":"attrs.income","cmp":"gte","value":5000}`, ids(1, 2, 3, 8), time.Time{}, nil},
	{"number lt", `{"field":"attrs.income","cmp":"lt","value":5000}`, ids(5), time.Time{}, nil},
	{"number lte", `{"field":"attrs.income","cmp":"lte","value":5000}`, ids(3, 5), time.Time{}, nil},
	{"number between", `{"field":"attrs.income","cmp":"between","value":[5000,8000]}`, ids(1, 3, 8), time.Time{}, nil},
	{"number in", `{"field":"attrs.income","cmp":"in","value":[5000,12000.5]}`, ids(2, 3), time.Time{}, nil},
	{"number not_in", `{"field":"attrs.income","cmp":"not_in","value":[5000,12000.5]}`, but(2, 3), time.Time{}, nil},
	{"number is_set", `{"field":"attrs.income","cmp":"is_set"}`, ids(1, 2, 3, 5, 8), time.Time{}, nil},
	{"number is_not_set", `{"field":"attrs.income","cmp":"is_not_set"}`, but(1, 2, 3, 5, 8), time.Time{}, nil},

	// Bools.
	{"bool true", `{"field":"attrs.vip","cmp":"eq","value":true}`, ids(1, 8), time.Time{}, nil},
	{"bool false", `{"field":"attrs.vip","cmp":"eq","value":false}`, ids(2), time.Time{}, nil},
	{"bool is_set", `{"field":"attrs.vip","cmp":"is_set"}`, ids(1, 2, 8), time.Time{}, nil},
	{"bool is_not_set", `{"field":"attrs.vip","cmp":"is_not_set"}`, but(1, 2, 8), time.Time{}, nil},
	{"not bool true", `{"op":"not","children":[{"field":"attrs.vip","cmp":"eq","value":true}]}`, but(1, 8), time.Time{}, nil},

	// Dates.
	{"birthday on", `{"field":"birthday","cmp":"on","value":"1990-03-20"}`, ids(1), time.Time{}, nil},
	{"birthday before", `{"field":"birthday","cmp":"before","value":"1990-01-01"}`, ids(2, 9), time.Time{}, nil},
	{"birthday after", `{"field":"birthday","cmp":"after","value":"1995-03-01"}`, ids(3, 5), time.Time{}, nil},
	{"birthday between", `{"field":"birthday","cmp":"between","value":["1990-03-20","1995-03-01"]}`, ids(1, 8, 10), time.Time{}, nil},
	{"birthday after the last date", `{"field":"birthday","cmp":"after","value":"9999-12-31"}`, nil, time.Time{}, nil},
	{"birthday before the first date", `{"field":"birthday","cmp":"before","value":"0000-01-01"}`, nil, time.Time{}, nil},
	{"birthday is_set", `{"field":"birthday","cmp":"is_set"}`, ids(1, 2, 3, 5, 8, 9, 10), time.Time{}, nil},
	{"birthday in_last_days", `{"field":"birthday","cmp":"in_last_days","value":1}`, nil, time.Time{}, nil},
	{"date attr in_next_days 6", `{"field":"attrs.joined","cmp":"in_next_days","value":6}`, ids(4), time.Time{}, nil},
	{"date attr in_next_days 5", `{"field":"attrs.joined","cmp":"in_next_days","value":5}`, nil, time.Time{}, nil},
	{"date attr more_than_days_ago", `{"field":"attrs.joined","cmp":"more_than_days_ago","value":365}`, ids(1), time.Time{}, nil},
	{"anniversary 7", `{"field":"birthday","cmp":"anniversary_in_next_days","value":7}`, ids(1, 5, 8), time.Time{}, nil},
	{"anniversary 1", `{"field":"birthday","cmp":"anniversary_in_next_days","value":1}`, ids(5), time.Time{}, nil},
	{"leap day on 28 Feb of a common year", `{"field":"birthday","cmp":"anniversary_in_next_days","value":2}`, ids(3, 9), cst("2026-02-27 10:00"), nil},
	{"leap day not on 27 Feb", `{"field":"birthday","cmp":"anniversary_in_next_days","value":1}`, nil, cst("2026-02-27 10:00"), nil},
	{"leap day not on 28 Feb of a leap year", `{"field":"birthday","cmp":"anniversary_in_next_days","value":1}`, ids(9), cst("2028-02-28 10:00"), nil},
	{"leap day on 29 Feb of a leap year", `{"field":"birthday","cmp":"anniversary_in_next_days","value":2}`, ids(3, 9), cst("2028-02-28 10:00"), nil},

	// Instants, by their day in the time zone.
	{"created on today", `{"field":"created_at","cmp":"on","value":"2026-03-15"}`, ids(3), time.Time{}, nil},
	{"created on today UTC", `{"field":"created_at","cmp":"on","value":"2026-03-15"}`, nil, time.Time{}, time.UTC},
	{"created on yesterday UTC", `{"field":"created_at","cmp":"on","value":"2026-03-14"}`, ids(2, 3), time.Time{}, time.UTC},
	{"created on yesterday", `{"field":"created_at","cmp":"on","value":"2026-03-14"}`, ids(2), time.Time{}, nil},
	{"created in_last_days 1", `{"field":"created_at","cmp":"in_last_days","value":1}`, ids(3), time.Time{}, nil},
	{"created in_last_days 2", `{"field":"created_at","cmp":"in_last_days","value":2}`, ids(2, 3), time.Time{}, nil},
	{"created before", `{"field":"created_at","cmp":"before","value":"2026-01-01"}`, ids(1, 4, 5, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), time.Time{}, nil},
	{"created before UTC", `{"field":"created_at","cmp":"before","value":"2026-01-01"}`, ids(1, 4, 5, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), time.Time{}, time.UTC},
	{"created after", `{"field":"created_at","cmp":"after","value":"2025-12-31"}`, ids(2, 3, 7, 8, 10), time.Time{}, nil},
	{"created between", `{"field":"created_at","cmp":"between","value":["2026-01-01","2026-02-13"]}`, ids(7, 8), time.Time{}, nil},
	{"created more_than_days_ago", `{"field":"created_at","cmp":"more_than_days_ago","value":30}`, ids(1, 4, 5, 7, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), time.Time{}, nil},
	{"last seen in_last_days 7", `{"field":"last_seen_at","cmp":"in_last_days","value":7}`, ids(1, 4, 8), time.Time{}, nil},
	{"last seen more_than_days_ago skips never seen", `{"field":"last_seen_at","cmp":"more_than_days_ago","value":7}`, ids(5), time.Time{}, nil},
	{"last seen is_not_set", `{"field":"last_seen_at","cmp":"is_not_set"}`, but(1, 3, 4, 5, 8), time.Time{}, nil},

	// Owner.
	{"owner eq", `{"field":"owner","cmp":"eq","value":1}`, ids(1, 4), time.Time{}, nil},
	{"owner ne includes unowned", `{"field":"owner","cmp":"ne","value":1}`, but(1, 4), time.Time{}, nil},
	{"owner in", `{"field":"owner","cmp":"in","value":[2,3]}`, ids(2, 5, 8, 10), time.Time{}, nil},
	{"owner not_in", `{"field":"owner","cmp":"not_in","value":[2,3]}`, but(2, 5, 8, 10), time.Time{}, nil},
	{"owner is_set", `{"field":"owner","cmp":"is_set"}`, ids(1, 2, 4, 5, 8, 10), time.Time{}, nil},
	{"owner is_not_set", `{"field":"owner","cmp":"is_not_set"}`, but(1, 2, 4, 5, 8, 10), time.Time{}, nil},

	// Lists: opt-outs and list attributes.
	{"opted_out contains", `{"field":"opted_out","cmp":"contains","value":"sms"}`, ids(1, 2), time.Time{}, nil},
	{"opted_out not_contains", `{"field":"opted_out","cmp":"not_contains","value":"sms"}`, but(1, 2), time.Time{}, nil},
	{"opted_out contains_any", `{"field":"opted_out","cmp":"contains_any","value":["email","wecom_private"]}`, ids(2, 8), time.Time{}, nil},
	{"opted_out contains_all", `{"field":"opted_out","cmp":"contains_all","value":["sms","email","sms"]}`, ids(2), time.Time{}, nil},
	{"opted_out is_set", `{"field":"opted_out","cmp":"is_set"}`, ids(1, 2, 8), time.Time{}, nil},
	{"opted_out is_not_set", `{"field":"opted_out","cmp":"is_not_set"}`, but(1, 2, 8), time.Time{}, nil},
	{"list contains", `{"field":"attrs.hobbies","cmp":"contains","value":"瑜伽"}`, ids(1, 8), time.Time{}, nil},
	{"list not_contains", `{"field":"attrs.hobbies","cmp":"not_contains","value":"瑜伽"}`, but(1, 8), time.Time{}, nil},
	{"list contains_any", `{"field":"attrs.hobbies","cmp":"contains_any","value":["阅读","游泳"]}`, ids(2, 8), time.Time{}, nil},
	{"list contains_all", `{"field":"attrs.hobbies","cmp":"contains_all","value":["瑜伽","跑步"]}`, ids(1), time.Time{}, nil},
	{"list is_set skips empty", `{"field":"attrs.hobbies","cmp":"is_set"}`, ids(1, 2, 8), time.Time{}, nil},
	{"list is_not_set", `{"field":"attrs.hobbies","cmp":"is_not_set"}`, but(1, 2, 8), time.Time{}, nil},

	// Tags.
	{"tags any", `{"tag":{"match":"any","ids":[1,2]}}`, ids(1, 2, 8), time.Time{}, nil},
	{"tags all", `{"tag":{"match":"all","ids":[1,2]}}`, ids(1), time.Time{}, nil},
	{"tags none", `{"tag":{"match":"none","ids":[1,2]}}`, but(1, 2, 8), time.Time{}, nil},
	{"tag group any", `{"tag":{"match":"any","group":2}}`, ids(1, 3), time.Time{}, nil},
	{"tag group none", `{"tag":{"match":"none","group":2}}`, but(1, 3), time.Time{}, nil},
	{"tag group without assignments", `{"tag":{"match":"any","group":3}}`, nil, time.Time{}, nil},
	{"tag never assigned", `{"tag":{"match":"any","ids":[5]}}`, nil, time.Time{}, nil},

	// Events: counts in windows of days.
	{"event ever", `{"event":{"name":"purchase"}}`, ids(11, 12, 14), time.Time{}, nil},
	{"event last 7 days", `{"event":{"name":"purchase","window":{"last_days":7}}}`, ids(11, 12), time.Time{}, nil},
	{"event count eq 2", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"eq","value":2}}}`, ids(11), time.Time{}, nil},
	{"event count gte 2", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"gte","value":2}}}`, ids(11), time.Time{}, nil},
	{"event count eq 0", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"eq","value":0}}}`, but(11, 12), time.Time{}, nil},
	{"event count lt 1", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"lt","value":1}}}`, but(11, 12), time.Time{}, nil},
	{"event count lt 2", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"lt","value":2}}}`, but(11), time.Time{}, nil},
	{"event count lte 1", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"lte","value":1}}}`, but(11), time.Time{}, nil},
	{"event count ne 1", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"ne","value":1}}}`, but(12), time.Time{}, nil},
	{"event count gt 0", `{"event":{"name":"purchase","window":{"last_days":7},"count":{"cmp":"gt","value":0}}}`, ids(11, 12), time.Time{}, nil},
	{"event count gte 0", `{"event":{"name":"purchase","count":{"cmp":"gte","value":0}}}`, universe, time.Time{}, nil},
	{"event today starts at local midnight", `{"event":{"name":"purchase","window":{"last_days":1}}}`, ids(11), time.Time{}, nil},
	{"event today UTC", `{"event":{"name":"purchase","window":{"last_days":1}}}`, nil, time.Time{}, time.UTC},
	{"event from to", `{"event":{"name":"purchase","window":{"from":"2026-03-09","to":"2026-03-14"}}}`, ids(11, 12), time.Time{}, nil},
	{"event to", `{"event":{"name":"purchase","window":{"to":"2026-03-08"}}}`, ids(11, 14), time.Time{}, nil},
	{"event count of views", `{"event":{"name":"view","count":{"cmp":"gte","value":3}}}`, ids(12), time.Time{}, nil},
	{"event views today", `{"event":{"name":"view","window":{"last_days":1}}}`, ids(1, 13), time.Time{}, nil},

	// Event properties.
	{"prop eq text", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"eq","value":"小程序"}]}}`, ids(11), time.Time{}, nil},
	{"prop ne", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"ne","value":"小程序"}]}}`, ids(11, 12, 14), time.Time{}, nil},
	{"prop in", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"in","value":["门店","x"]}]}}`, ids(11, 14), time.Time{}, nil},
	{"prop not_in", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"not_in","value":["门店"]}]}}`, ids(11, 12), time.Time{}, nil},
	{"prop eq number", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"eq","value":100}]}}`, ids(11), time.Time{}, nil},
	{"prop eq number is not text", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"eq","value":100}],"count":{"cmp":"gte","value":2}}}`, nil, time.Time{}, nil},
	{"prop eq text is not number", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"eq","value":"100"}],"window":{"last_days":7}}}`, ids(11), time.Time{}, nil},
	{"prop in mixed types", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"in","value":[100,"100"]}],"count":{"cmp":"gte","value":2}}}`, ids(11), time.Time{}, nil},
	{"prop gt", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"gt","value":60}]}}`, ids(11, 12), time.Time{}, nil},
	{"prop lt", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"lt","value":60}]}}`, ids(11), time.Time{}, nil},
	{"prop lte", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"lte","value":50.5}]}}`, ids(11), time.Time{}, nil},
	{"prop gte", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"gte","value":200}]}}`, ids(12), time.Time{}, nil},
	{"prop contains", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"contains","value":"小"}]}}`, ids(11), time.Time{}, nil},
	{"prop null is not set", `{"event":{"name":"purchase","where":[{"prop":"note","cmp":"is_set"}]}}`, nil, time.Time{}, nil},
	{"prop null is_not_set", `{"event":{"name":"purchase","where":[{"prop":"note","cmp":"is_not_set"}]}}`, ids(11, 12, 14), time.Time{}, nil},
	{"prop is_set", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"is_set"}]}}`, ids(11, 12), time.Time{}, nil},
	{"prop missing is_not_set", `{"event":{"name":"purchase","where":[{"prop":"amount","cmp":"is_not_set"}]}}`, ids(14), time.Time{}, nil},
	{"prop bool", `{"event":{"name":"purchase","where":[{"prop":"vip","cmp":"eq","value":true}]}}`, ids(11), time.Time{}, nil},
	{"prop bool false", `{"event":{"name":"purchase","where":[{"prop":"vip","cmp":"eq","value":false}]}}`, nil, time.Time{}, nil},
	{"prop bool ne", `{"event":{"name":"purchase","where":[{"prop":"vip","cmp":"ne","value":true}]}}`, ids(11, 12, 14), time.Time{}, nil},
	{"prop names with a dot and a space", `{"event":{"name":"view","where":[{"prop":"a.b","cmp":"eq","value":1},{"prop":"utm source","cmp":"eq","value":"wx"}]}}`, ids(13), time.Time{}, nil},
	{"props all hold on one event", `{"event":{"name":"purchase","where":[{"prop":"channel","cmp":"eq","value":"门店"},{"prop":"amount","cmp":"eq","value":100}]}}`, nil, time.Time{}, nil},

	// Events: first and last.
	{"first on", `{"event":{"name":"purchase","timing":"first","cmp":"on","value":"2026-03-08"}}`, ids(11), time.Time{}, nil},
	{"last in_last_days", `{"event":{"name":"purchase","timing":"last","cmp":"in_last_days","value":1}}`, ids(11), time.Time{}, nil},
	{"last before", `{"event":{"name":"view","timing":"last","cmp":"before","value":"2026-03-15"}}`, ids(12), time.Time{}, nil},
	{"first before", `{"event":{"name":"view","timing":"first","cmp":"before","value":"2026-03-15"}}`, ids(1, 12, 13), time.Time{}, nil},
	{"first is_not_set", `{"event":{"name":"view","timing":"first","cmp":"is_not_set"}}`, but(1, 12, 13), time.Time{}, nil},
	{"last is_set", `{"event":{"name":"purchase","timing":"last","cmp":"is_set"}}`, ids(11, 12, 14), time.Time{}, nil},
	{"first with where", `{"event":{"name":"purchase","timing":"first","where":[{"prop":"channel","cmp":"eq","value":"门店"}],"cmp":"after","value":"2026-01-05"}}`, ids(11), time.Time{}, nil},

	// Orders: refunds out, net amounts, zero-amount orders count.
	{"orders ever", `{"order":{"metric":"count","cmp":"gte","value":1}}`, ids(12, 15, 16, 17), time.Time{}, nil},
	{"orders none", `{"order":{"metric":"count","cmp":"eq","value":0}}`, but(12, 15, 16, 17), time.Time{}, nil},
	{"orders count gte 2", `{"order":{"metric":"count","cmp":"gte","value":2}}`, ids(15, 17), time.Time{}, nil},
	{"orders count eq 1", `{"order":{"metric":"count","cmp":"eq","value":1}}`, ids(12, 16), time.Time{}, nil},
	{"orders count in", `{"order":{"metric":"count","cmp":"in","value":[1,2]}}`, ids(12, 15, 16, 17), time.Time{}, nil},
	{"orders count not_in", `{"order":{"metric":"count","cmp":"not_in","value":[2]}}`, but(15, 17), time.Time{}, nil},
	{"orders count between", `{"order":{"metric":"count","cmp":"between","value":[1,1]}}`, ids(12, 16), time.Time{}, nil},
	{"orders count is_set", `{"order":{"metric":"count","cmp":"is_set"}}`, universe, time.Time{}, nil},
	{"orders count is_not_set", `{"order":{"metric":"count","cmp":"is_not_set"}}`, nil, time.Time{}, nil},
	{"orders count eq 1.5", `{"order":{"metric":"count","cmp":"eq","value":1.5}}`, nil, time.Time{}, nil},
	{"orders last 7 days", `{"order":{"metric":"count","window":{"last_days":7},"cmp":"gte","value":1}}`, ids(15, 17), time.Time{}, nil},
	{"orders today", `{"order":{"metric":"count","window":{"last_days":1},"cmp":"gte","value":1}}`, ids(15), time.Time{}, nil},
	{"orders today UTC", `{"order":{"metric":"count","window":{"last_days":1},"cmp":"gte","value":1}}`, nil, time.Time{}, time.UTC},
	{"total gte", `{"order":{"metric":"total","cmp":"gte","value":140}}`, ids(12, 15), time.Time{}, nil},
	{"total gt", `{"order":{"metric":"total","cmp":"gt","value":140}}`, ids(12), time.Time{}, nil},
	{"total eq 0", `{"order":{"metric":"total","cmp":"eq","value":0}}`, but(12, 15, 17), time.Time{}, nil},
	{"total eq", `{"order":{"metric":"total","cmp":"eq","value":66.67}}`, ids(17), time.Time{}, nil},
	{"total lt", `{"order":{"metric":"total","cmp":"lt","value":66.67}}`, but(12, 15, 17), time.Time{}, nil},
	{"total between", `{"order":{"metric":"total","cmp":"between","value":[66.67,140]}}`, ids(15, 17), time.Time{}, nil},
	{"total rounds to fen", `{"order":{"metric":"total","cmp":"eq","value":66.6701}}`, ids(17), time.Time{}, nil},
	{"total in window", `{"order":{"metric":"total","window":{"last_days":7},"cmp":"gte","value":100}}`, ids(15), time.Time{}, nil},
	{"total to", `{"order":{"metric":"total","window":{"to":"2026-03-09"},"cmp":"gt","value":0}}`, ids(12), time.Time{}, nil},
	{"avg eq", `{"order":{"metric":"avg","cmp":"eq","value":70}}`, ids(15), time.Time{}, nil},
	{"avg is exact", `{"order":{"metric":"avg","cmp":"eq","value":33.33}}`, nil, time.Time{}, nil},
	{"avg gt", `{"order":{"metric":"avg","cmp":"gt","value":33.33}}`, ids(12, 15, 17), time.Time{}, nil},
	{"avg lt", `{"order":{"metric":"avg","cmp":"lt","value":33.34}}`, ids(16, 17), time.Time{}, nil},
	{"avg eq 0", `{"order":{"metric":"avg","cmp":"eq","value":0}}`, ids(16), time.Time{}, nil},
	{"avg ne includes unset", `{"order":{"metric":"avg","cmp":"ne","value":0}}`, but(16), time.Time{}, nil},
	{"avg between", `{"order":{"metric":"avg","cmp":"between","value":[0,70]}}`, ids(15, 16, 17), time.Time{}, nil},
	{"avg in", `{"order":{"metric":"avg","cmp":"in","value":[200,70]}}`, ids(12, 15), time.Time{}, nil},
	{"avg is_set", `{"order":{"metric":"avg","cmp":"is_set"}}`, ids(12, 15, 16, 17), time.Time{}, nil},
	{"avg is_not_set", `{"order":{"metric":"avg","cmp":"is_not_set"}}`, but(12, 15, 16, 17), time.Time{}, nil},
	{"first_at on", `{"order":{"metric":"first_at","cmp":"on","value":"2026-03-10"}}`, ids(15), time.Time{}, nil},
	{"last_at on the day's last ms", `{"order":{"metric":"last_at","cmp":"on","value":"2026-03-14"}}`, ids(17), time.Time{}, nil},
	{"last_at in_last_days", `{"order":{"metric":"last_at","cmp":"in_last_days","value":1}}`, ids(15), time.Time{}, nil},
	{"first_at before", `{"order":{"metric":"first_at","cmp":"before","value":"2026-01-01"}}`, ids(12, 16), time.Time{}, nil},
	{"first_at is_not_set", `{"order":{"metric":"first_at","cmp":"is_not_set"}}`, but(12, 15, 16, 17), time.Time{}, nil},
	{"last_at is_set", `{"order":{"metric":"last_at","cmp":"is_set"}}`, ids(12, 15, 16, 17), time.Time{}, nil},

	// Habits: the most frequent hour or weekday, ties to the smallest.
	{"active hour 0", `{"habit":{"kind":"active_hour","in":[0]}}`, ids(11), time.Time{}, nil},
	{"active hour tie", `{"habit":{"kind":"active_hour","in":[9]}}`, ids(1), time.Time{}, nil},
	{"active hour tie loser", `{"habit":{"kind":"active_hour","in":[20]}}`, nil, time.Time{}, nil},
	{"active hour window", `{"habit":{"kind":"active_hour","in":[3]}}`, ids(19), time.Time{}, nil},
	{"active hour outside window", `{"habit":{"kind":"active_hour","in":[23]}}`, nil, time.Time{}, nil},
	{"active hour in", `{"habit":{"kind":"active_hour","in":[10,12,8]}}`, ids(12, 13, 14), time.Time{}, nil},
	{"active hour UTC", `{"habit":{"kind":"active_hour","in":[1]}}`, ids(1), time.Time{}, time.UTC},
	{"active weekday tie", `{"habit":{"kind":"active_weekday","in":[6]}}`, ids(1), time.Time{}, nil},
	{"active weekday sunday", `{"habit":{"kind":"active_weekday","in":[7]}}`, ids(11, 13), time.Time{}, nil},
	{"active weekday tuesday", `{"habit":{"kind":"active_weekday","in":[2]}}`, ids(12, 19), time.Time{}, nil},
	{"active weekday monday", `{"habit":{"kind":"active_weekday","in":[1]}}`, ids(14), time.Time{}, nil},
	{"buy hour tie", `{"habit":{"kind":"buy_hour","in":[0]}}`, ids(15), time.Time{}, nil},
	{"buy hour zero-amount order", `{"habit":{"kind":"buy_hour","in":[8]}}`, ids(16), time.Time{}, nil},
	{"buy hour outside a year", `{"habit":{"kind":"buy_hour","in":[10]}}`, ids(17), time.Time{}, nil},
	{"buy hour tie loser", `{"habit":{"kind":"buy_hour","in":[23,12]}}`, nil, time.Time{}, nil},
	{"buy weekday", `{"habit":{"kind":"buy_weekday","in":[2]}}`, ids(15), time.Time{}, nil},
	{"buy weekday saturday", `{"habit":{"kind":"buy_weekday","in":[6]}}`, ids(17), time.Time{}, nil},
	{"buy weekday monday", `{"habit":{"kind":"buy_weekday","in":[1]}}`, ids(16), time.Time{}, nil},

	// Saved segments and groups.
	{"segment", `{"segment":1}`, ids(1, 4, 8, 10), time.Time{}, nil},
	{"nested segments", `{"segment":3}`, ids(1, 3, 8), time.Time{}, nil},
	{"not segment", `{"op":"not","children":[{"segment":2}]}`, but(1, 8), time.Time{}, nil},
	{"and with not", `{"op":"and","children":[{"segment":1},{"op":"not","children":[{"segment":2}]}]}`, ids(4, 10), time.Time{}, nil},
	{"or", `{"op":"or","children":[{"field":"name","cmp":"eq","value":"Eve"},{"tag":{"match":"any","ids":[4]}},{"order":{"metric":"count","cmp":"gte","value":2}}]}`, ids(3, 8, 15, 17), time.Time{}, nil},
	{"not not", `{"op":"not","children":[{"op":"not","children":[{"field":"gender","cmp":"eq","value":"male"}]}]}`, ids(2, 5, 9), time.Time{}, nil},
	{"not of a complement", `{"op":"not","children":[{"field":"owner","cmp":"ne","value":1}]}`, ids(1, 4), time.Time{}, nil},
}

func TestSegmentSQL(t *testing.T) {
	d := segData()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := segmenttest.Load(ctx, s, d); err != nil {
			t.Fatal(err)
		}
		sch, err := s.SegmentSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range segCases {
			now, loc := c.now, c.loc
			if now.IsZero() {
				now = segNow
			}
			tree := mustParse(c.tree)
			got, err := s.SegmentMembersSQL(ctx, tree, sch, now, loc)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			want := c.want
			if want == nil {
				want = []int64{}
			}
			if !reflect.DeepEqual(got, want) {
				q, _, _ := s.SegmentSQL(tree, sch, now, loc)
				t.Errorf("%s: got %v, want %v\n%s\n%s", c.name, got, want, c.tree, q)
				continue
			}
			n, err := s.SegmentCountSQL(ctx, tree, sch, now, loc)
			if err != nil || n != int64(len(want)) {
				t.Errorf("%s: count %d, %v; want %d", c.name, n, err, len(want))
			}
		}
		// The meta-character cases left the data alone.
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM customers`).Scan(&n); err != nil || n != len(d.Customers) {
			t.Fatalf("customers: %d, %v; want %d", n, err, len(d.Customers))
		}
	})
}

func TestSegmentSQLKeepsValuesOutOfTheText(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	d := segData()
	tree := mustParse(`{"op":"or","children":[
		{"field":"name","cmp":"eq","value":"'; DROP TABLE customers; --"},
		{"field":"attrs.level","cmp":"contains","value":"secret-value"},
		{"event":{"name":"secret-event","where":[{"prop":"secret-prop","cmp":"eq","value":"secret-prop-value"}]}},
		{"field":"attrs.a.b","cmp":"eq","value":"x"}]}`)
	for _, eng := range []store.Engine{store.SQLite, store.Postgres} {
		if eng == store.Postgres {
			s = storetest.Open(t, store.Postgres)
		}
		q, args, err := s.SegmentSQL(tree, d.Schema(), segNow, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"DROP", "secret", "a.b"} {
			if strings.Contains(q, secret) {
				t.Errorf("%s: %q is in the query text:\n%s", eng, secret, q)
			}
		}
		if want := strings.Count(q, "?") + strings.Count(q, "$"); want != len(args) {
			t.Errorf("%s: %d placeholders, %d args", eng, want, len(args))
		}
	}
}

func TestSegmentSQLRefusesInvalidTrees(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	sch := segData().Schema()
	for _, src := range []string{
		`{"field":"attrs.nope","cmp":"eq","value":"x"}`,
		`{"segment":99}`,
		`{"tag":{"match":"any","ids":[99]}}`,
		`{"field":"name","cmp":"gt","value":"x"}`,
	} {
		if _, _, err := s.SegmentSQL(mustParse(src), sch, segNow, nil); err == nil {
			t.Errorf("%s: no error", src)
		}
	}
}

func TestSegmentSchemaReadsTheDatabase(t *testing.T) {
	d := segData()
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		if err := segmenttest.Load(ctx, s, d); err != nil {
			t.Fatal(err)
		}
		got, err := s.SegmentSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := d.Schema()
		if !reflect.DeepEqual(got.Attrs, want.Attrs) || !reflect.DeepEqual(got.Tags, want.Tags) || !reflect.DeepEqual(got.Groups, want.Groups) || len(got.Trees) != len(want.Trees) {
			t.Fatalf("schema %+v, want %+v", got, want)
		}
		for id, tree := range want.Trees {
			if got.Trees[id].String() != tree.String() {
				t.Errorf("segment %d: %s, want %s", id, got.Trees[id], tree)
			}
		}
	})
}

func TestMinorUnits(t *testing.T) {
	for v, want := range map[float64]int64{0: 0, 0.29: 29, 0.125: 13, -0.125: -13, 66.67: 6667, 1e300: 1 << 53, -1e300: -(1 << 53)} {
		if got := store.MinorUnits(v); got != want {
			t.Errorf("MinorUnits(%v) = %d, want %d", v, got, want)
		}
	}
}

// TestSegmentSQLEnginesAgree runs random trees over a random data set on SQLite and
// PostgreSQL: both engines must select the same customers.
func TestSegmentSQLEnginesAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	d := segmenttest.Random(rng, 80, segNow)
	lite, pg := storetest.Open(t, store.SQLite), storetest.Open(t, store.Postgres)
	for _, s := range []*store.Store{lite, pg} {
		if err := segmenttest.Load(ctx, s, d); err != nil {
			t.Fatal(err)
		}
	}
	sch := d.Schema()
	in := d.Info(segNow)
	nonEmpty := 0
	for i := range 400 {
		tree := segmenttest.RandomTree(rng, in, 3)
		a, err := lite.SegmentMembersSQL(ctx, tree, sch, segNow, nil)
		if err != nil {
			t.Fatalf("tree %d %s: sqlite: %v", i, tree, err)
		}
		b, err := pg.SegmentMembersSQL(ctx, tree, sch, segNow, nil)
		if err != nil {
			t.Fatalf("tree %d %s: postgres: %v", i, tree, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("tree %d %s:\nsqlite   %v\npostgres %v", i, tree, a, b)
		}
		if len(a) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < 100 {
		t.Errorf("only %d of 400 random trees select anyone: the generator is too narrow", nonEmpty)
	}
}
