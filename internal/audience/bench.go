package audience

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
)

// BenchTrees is the fixed mix of segments `siyu bench segments` counts: 10 to 20 conditions
// each over tags, attributes, event counts, orders and profile fields, as operators build them.
var BenchTrees = []struct{ Name, Tree string }{
	{"高价值女性活跃客户 (12)", `{"op":"and","children":[
		{"field":"gender","cmp":"eq","value":"female"},
		{"tag":{"match":"any","ids":[1,2,3]}},
		{"tag":{"match":"none","ids":[21,22]}},
		{"field":"attrs.income","cmp":"gte","value":5000},
		{"field":"attrs.level","cmp":"in","value":["中级会员","高级会员"]},
		{"field":"attrs.city_tier","cmp":"in","value":["一线","新一线"]},
		{"event":{"name":"页面浏览","count":{"cmp":"gte","value":2},"window":{"last_days":90}}},
		{"event":{"name":"加企微","window":{"last_days":365}}},
		{"order":{"metric":"count","window":{"last_days":180},"cmp":"gte","value":1}},
		{"field":"source","cmp":"in","value":["小红书","抖音","渠道活码"]},
		{"field":"opted_out","cmp":"not_contains","value":"sms"},
		{"field":"created_at","cmp":"more_than_days_ago","value":30}]}`},
	{"沉睡挽回 (10)", `{"op":"and","children":[
		{"order":{"metric":"count","cmp":"gte","value":2}},
		{"order":{"metric":"last_at","cmp":"more_than_days_ago","value":60}},
		{"event":{"name":"页面浏览","count":{"cmp":"eq","value":0},"window":{"last_days":30}}},
		{"tag":{"match":"any","group":2}},
		{"field":"attrs.points","cmp":"between","value":[100,8000]},
		{"field":"owner","cmp":"is_set"},
		{"field":"region","cmp":"in","value":["广东","江苏","浙江","上海","北京"]},
		{"op":"not","children":[{"tag":{"match":"any","ids":[31,32,33]}}]},
		{"field":"attrs.is_member","cmp":"eq","value":true},
		{"field":"last_seen_at","cmp":"more_than_days_ago","value":14}]}`},
	{"社群活跃潜客 (15)", `{"op":"and","children":[
		{"op":"or","children":[
			{"event":{"name":"入群","window":{"last_days":60}}},
			{"event":{"name":"打卡","count":{"cmp":"gte","value":1},"window":{"last_days":30}}},
			{"event":{"name":"问卷","window":{"last_days":90}}}]},
		{"order":{"metric":"count","cmp":"eq","value":0}},
		{"event":{"name":"咨询","window":{"last_days":30}}},
		{"field":"attrs.hobbies","cmp":"contains_any","value":["瑜伽","健身","跑步"]},
		{"field":"attrs.age","cmp":"between","value":[22,40]},
		{"field":"gender","cmp":"is_set"},
		{"tag":{"match":"any","ids":[11,12,13,14]}},
		{"tag":{"match":"none","ids":[41]}},
		{"field":"birthday","cmp":"is_set"},
		{"field":"attrs.wechat_bound","cmp":"eq","value":true},
		{"field":"source","cmp":"ne","value":"门店"},
		{"field":"attrs.city_tier","cmp":"is_set"}]}`},
	{"复购高频 (18)", `{"op":"and","children":[
		{"order":{"metric":"count","window":{"last_days":365},"cmp":"gte","value":3}},
		{"order":{"metric":"total","window":{"last_days":365},"cmp":"gte","value":300}},
		{"order":{"metric":"avg","cmp":"gte","value":80}},
		{"event":{"name":"加购","count":{"cmp":"gte","value":1},"window":{"last_days":90}}},
		{"event":{"name":"页面浏览","count":{"cmp":"gte","value":3},"window":{"last_days":180}}},
		{"op":"or","children":[{"tag":{"match":"any","ids":[1,5,9]}},{"tag":{"match":"any","ids":[11,15,19]}},{"field":"attrs.level","cmp":"eq","value":"高级会员"}]},
		{"field":"attrs.income","cmp":"gt","value":2000},
		{"field":"attrs.points","cmp":"gte","value":500},
		{"field":"gender","cmp":"in","value":["female","male"]},
		{"field":"owner","cmp":"in","value":[1,2,3,4,5,6,7,8,9,10]},
		{"field":"opted_out","cmp":"is_not_set"},
		{"field":"created_at","cmp":"more_than_days_ago","value":60},
		{"field":"region","cmp":"ne","value":"新疆"},
		{"op":"not","children":[{"tag":{"match":"any","group":5}}]},
		{"field":"attrs.expires","cmp":"is_not_set"}]}`},
	{"生日关怀 (10)", `{"op":"and","children":[
		{"field":"birthday","cmp":"anniversary_in_next_days","value":7},
		{"order":{"metric":"count","cmp":"gte","value":1}},
		{"field":"attrs.is_member","cmp":"is_set"},
		{"tag":{"match":"any","ids":[2,4,6,8,10]}},
		{"field":"attrs.level","cmp":"ne","value":"普通会员"},
		{"event":{"name":"页面浏览","window":{"last_days":365}}},
		{"field":"attrs.income","cmp":"is_set"},
		{"field":"opted_out","cmp":"not_contains","value":"sms"},
		{"habit":{"kind":"active_hour","in":[19,20,21,22]}},
		{"field":"source","cmp":"is_set"}]}`},
}

// TreeResult is one benchmarked segment. First is the first count's latency (the engine
// caches unions a count computed, so later counts of the same segment can be faster).
type TreeResult struct {
	Name            string
	Count           uint64
	P50, P99, First time.Duration
}

// BenchResult is what `siyu bench segments` reports for the engine.
type BenchResult struct {
	Customers        int
	LoadTime         time.Duration
	BytesPerCustomer float64
	Trees            []TreeResult
	CountsPerSecond  float64
}

// ParseBenchTrees parses BenchTrees.
func ParseBenchTrees() ([]*segment.Node, error) {
	var out []*segment.Node
	for _, t := range BenchTrees {
		n, err := segment.Parse([]byte(t.Tree))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// Bench loads an engine from a synthetic population and counts each bench tree runs times.
func Bench(ctx context.Context, syn *Synthetic, runs int, prog Progress) (*BenchResult, *Engine, error) {
	trees, err := ParseBenchTrees()
	if err != nil {
		return nil, nil, err
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	e := New(syn, Options{Now: func() time.Time { return syn.Now }, Location: syn.loc()})
	start := time.Now()
	if err := e.Rebuild(ctx, prog); err != nil {
		return nil, nil, err
	}
	res := &BenchResult{Customers: syn.N, LoadTime: time.Since(start)}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	res.BytesPerCustomer = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(syn.N)
	total := time.Duration(0)
	n := 0
	for i, t := range trees {
		lat := make([]time.Duration, 0, runs)
		var count uint64
		for r := 0; r < runs; r++ {
			t0 := time.Now()
			c, err := e.Count(ctx, t, nil)
			if err != nil {
				return nil, nil, err
			}
			d := time.Since(t0)
			lat = append(lat, d)
			total += d
			n++
			count = c
		}
		first := lat[0]
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		res.Trees = append(res.Trees, TreeResult{Name: BenchTrees[i].Name, Count: count, P50: lat[len(lat)/2], P99: lat[min(len(lat)-1, len(lat)*99/100)], First: first})
	}
	res.CountsPerSecond = float64(n) / total.Seconds()
	return res, e, nil
}
