package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/segmentsvc"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// segEnv is an API environment with customers to segment: 60 customers, every third owned by
// the sales person, every fifth tagged VIP, regions alternating 上海 / 北京.
type segEnv struct {
	*apiEnv
	engine *audience.Engine // nil: the SQL evaluator answers
	vip    int64            // the VIP tag
	owned  []int64          // the sales person's customers
}

const segCustomers = 60

// eachSegEnv runs fn on both store engines, once with the audience engine and once without.
func eachSegEnv(t *testing.T, fn func(t *testing.T, e *segEnv)) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		for _, withEngine := range []bool{false, true} {
			name := "sql"
			if withEngine {
				name = "engine"
			}
			t.Run(name, func(t *testing.T) {
				if withEngine {
					// A fresh store per mode: the subtests must not share data.
					st = storetest.Open(t, st.Engine())
				}
				fn(t, newSegEnv(t, st, withEngine))
			})
		}
	})
}

func newSegEnv(t *testing.T, st *store.Store, withEngine bool) *segEnv {
	t.Helper()
	e := &segEnv{apiEnv: newAPIEnv(t, st)}
	cs := make([]*customer.Customer, segCustomers)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range cs {
		id := int64(i + 1)
		c := &customer.Customer{ID: id, Name: fmt.Sprintf("客户%d", id), Phone: fmt.Sprintf("1380000%04d", id), Region: "北京", Source: "渠道活码", CreatedAt: at.Add(time.Duration(i) * time.Hour)}
		if id%2 == 0 {
			c.Region = "上海"
		}
		switch id % 3 {
		case 0:
			c.OwnerID = e.sales.ID
			e.owned = append(e.owned, id)
		case 1:
			c.OwnerID = e.operator.ID
		}
		cs[i] = c
	}
	if id := int64(7); true {
		cs[id-1].Name = "=HYPERLINK(\"x\")"
	}
	if err := st.InTx(e.ctx, func(tx *store.Tx) error { return tx.BulkInsertCustomers(cs) }); err != nil {
		t.Fatal(err)
	}
	g := &tag.Group{Name: "会员", Kind: tag.Custom}
	if err := st.CreateTagGroup(e.ctx, g); err != nil {
		t.Fatal(err)
	}
	vip := &tag.Tag{GroupID: g.ID, Name: "VIP"}
	if err := st.CreateTag(e.ctx, vip); err != nil {
		t.Fatal(err)
	}
	e.vip = vip.ID
	var vips []int64
	for id := int64(5); id <= segCustomers; id += 5 {
		vips = append(vips, id)
	}
	if _, err := st.AssignTags(e.ctx, vips, []int64{vip.ID}, tag.Cause{Reason: tag.ReasonManual}); err != nil {
		t.Fatal(err)
	}
	if withEngine {
		e.engine = audience.New(st, audience.Options{Fallback: audience.SQLFallback{Store: st}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err := e.engine.Rebuild(e.ctx, nil); err != nil {
			t.Fatal(err)
		}
		st.Subscribe(e.engine.Apply)
		srv := &Server{Store: st, Audience: e.engine, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		e.h = srv.Handler()
	}
	return e
}

func (e *segEnv) source() string {
	if e.engine != nil {
		return "engine"
	}
	return "sql"
}

// sqlMembers is the reference: the tree evaluated as SQL.
func (e *segEnv) sqlMembers(tree string) []int64 {
	e.t.Helper()
	n, err := segment.Parse([]byte(tree))
	if err != nil {
		e.t.Fatal(err)
	}
	sch, err := e.st.SegmentSchema(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	ids, err := e.st.SegmentMembersSQL(e.ctx, n, sch, e.st.Now(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// save creates a segment through the API and returns its id.
func (e *segEnv) save(name, tree string) int64 {
	e.t.Helper()
	r := e.call("POST", "/api/v1/segments", e.opKey, `{"name": `+strconv.Quote(name)+`, "tree": `+tree+`}`)
	if r.Code != http.StatusCreated {
		e.t.Fatalf("save %s: %d %s", name, r.Code, r.Body)
	}
	return int64(r.JSON(e.t)["id"].(float64))
}

func segNum(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestSegmentsCRUD(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		shanghai := `{"field": "region", "cmp": "eq", "value": "上海"}`
		r := e.call("POST", "/api/v1/segments", e.opKey, `{"name": "上海客户", "description": "华东", "tree": `+shanghai+`}`)
		if r.Code != http.StatusCreated || r.Header.Get("Location") == "" {
			t.Fatalf("create: %d %s", r.Code, r.Body)
		}
		a := segNum(r.JSON(t)["id"])
		if got := r.JSON(t)["created_by"]; segNum(got) != e.operator.ID {
			t.Fatalf("created_by %v", got)
		}
		r = e.call("POST", "/api/v1/segments", e.adminKey, `{"name": " 上海客户 ", "tree": `+shanghai+`}`)
		if r.Code != http.StatusConflict || r.field(t) != "name" {
			t.Fatalf("duplicate name: %d %s", r.Code, r.Body)
		}
		for _, body := range []string{`{"tree": ` + shanghai + `}`, `{"name": "", "tree": ` + shanghai + `}`, `{"name": "x"}`} {
			if r := e.call("POST", "/api/v1/segments", e.opKey, body); r.Code != http.StatusUnprocessableEntity {
				t.Fatalf("create %s: %d %s", body, r.Code, r.Body)
			}
		}

		got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d", a), e.salesKey, nil)
		if got["name"] != "上海客户" || got["description"] != "华东" || got["source"] != e.source() || segNum(got["count"]) != int64(len(e.sqlMembers(`{"op":"and","children":[`+shanghai+`,{"field":"owner","cmp":"eq","value":`+strconv.FormatInt(e.sales.ID, 10)+`}]}`))) {
			t.Fatalf("get as sales: %v", got)
		}
		if got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d", a), e.opKey, nil); segNum(got["count"]) != segCustomers/2 {
			t.Fatalf("count of 上海 %v, want %d", got["count"], segCustomers/2)
		}

		b := e.save("not 上海", fmt.Sprintf(`{"op": "not", "children": [{"segment": %d}]}`, a))
		c := e.save("VIP", fmt.Sprintf(`{"tag": {"match": "any", "ids": [%d]}}`, e.vip))
		list := e.must(http.StatusOK, "GET", "/api/v1/segments", e.opKey, nil)
		segs := list["segments"].([]any)
		if len(segs) != 3 || list["source"] != e.source() {
			t.Fatalf("list %v", list)
		}
		counts := map[string]int64{}
		for _, s := range segs {
			m := s.(map[string]any)
			counts[m["name"].(string)] = segNum(m["count"])
		}
		if !reflect.DeepEqual(counts, map[string]int64{"上海客户": 30, "not 上海": 30, "VIP": 12}) {
			t.Fatalf("live counts %v", counts)
		}

		// Patch: rename, describe, retree; a cycle through b and the self-reference are refused.
		path := fmt.Sprintf("/api/v1/segments/%d", a)
		got = e.must(http.StatusOK, "PATCH", path, e.opKey, `{"name": "上海", "tree": {"op": "and", "children": [`+shanghai+`, {"field": "name", "cmp": "is_set"}]}}`)
		if got["name"] != "上海" || got["description"] != "华东" {
			t.Fatalf("patched %v", got)
		}
		r = e.call("PATCH", path, e.opKey, fmt.Sprintf(`{"tree": {"op": "or", "children": [%s, {"segment": %d}]}}`, shanghai, b))
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != "tree.children[1].segment" || !strings.Contains(string(r.Body), "refers to itself") {
			t.Fatalf("cycle through another segment: %d %s", r.Code, r.Body)
		}
		r = e.call("PATCH", path, e.opKey, fmt.Sprintf(`{"tree": {"segment": %d}}`, a))
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != "tree.segment" {
			t.Fatalf("self-reference: %d %s", r.Code, r.Body)
		}
		r = e.call("PATCH", fmt.Sprintf("/api/v1/segments/%d", c), e.opKey, `{"name": "上海"}`)
		if r.Code != http.StatusConflict || r.field(t) != "name" {
			t.Fatalf("rename onto a taken name: %d %s", r.Code, r.Body)
		}
		if r := e.call("PATCH", "/api/v1/segments/999", e.opKey, `{"name": "x"}`); r.Code != http.StatusNotFound {
			t.Fatalf("patch unknown: %d", r.Code)
		}

		// Delete: refused while b refers to a, naming b.
		r = e.call("DELETE", path, e.opKey, nil)
		if r.Code != http.StatusConflict || !strings.Contains(string(r.Body), "not 上海") {
			t.Fatalf("delete a referred segment: %d %s", r.Code, r.Body)
		}
		refs := r.JSON(t)["referrers"].([]any)
		if len(refs) != 1 || segNum(refs[0].(map[string]any)["id"]) != b {
			t.Fatalf("referrers %v", refs)
		}
		e.must(http.StatusNoContent, "DELETE", fmt.Sprintf("/api/v1/segments/%d", b), e.opKey, nil)
		e.must(http.StatusNoContent, "DELETE", path, e.adminKey, nil)
		if r := e.call("GET", path, e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("get deleted: %d", r.Code)
		}
	})
}

func TestSegmentsAuth(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := &segEnv{apiEnv: newAPIEnv(t, st)}
		id := e.save("all", `{"field": "name", "cmp": "is_set"}`)
		seg := fmt.Sprintf("/api/v1/segments/%d", id)
		for _, c := range []struct {
			method, path, key string
			body              any
			want              int
		}{
			{"GET", "/api/v1/segments", "", nil, http.StatusUnauthorized},
			{"POST", "/api/v1/segments/count", "", `{"tree": {"field": "name", "cmp": "is_set"}}`, http.StatusUnauthorized},
			{"GET", seg + "/export", "", nil, http.StatusUnauthorized},
			{"POST", "/api/v1/segments", e.salesKey, `{"name": "mine", "tree": {"field": "name", "cmp": "is_set"}}`, http.StatusForbidden},
			{"PATCH", seg, e.salesKey, `{"name": "x"}`, http.StatusForbidden},
			{"DELETE", seg, e.salesKey, nil, http.StatusForbidden},
			{"GET", seg + "/export", e.salesKey, nil, http.StatusForbidden},
			{"GET", seg + "/history", e.salesKey, nil, http.StatusForbidden},
			{"GET", "/api/v1/segments", e.salesKey, nil, http.StatusOK},
			{"GET", seg + "/members", e.salesKey, nil, http.StatusOK},
			{"POST", "/api/v1/segments/count", e.salesKey, `{"tree": {"field": "name", "cmp": "is_set"}}`, http.StatusOK},
			{"GET", seg + "/export", e.opKey, nil, http.StatusOK},
		} {
			if r := e.call(c.method, c.path, c.key, c.body); r.Code != c.want {
				t.Errorf("%s %s as %q: %d %s, want %d", c.method, c.path, c.key, r.Code, r.Body, c.want)
			}
		}
		// A browser session must send the CSRF token to count (POST), even though it writes nothing.
		if r := e.call("POST", "/api/v1/segments/count", "", `{"tree": {"field": "name", "cmp": "is_set"}}`, "Cookie", e.sessionToken); r.Code != http.StatusForbidden {
			t.Fatalf("count without CSRF: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/segments/count", "", `{"tree": {"field": "name", "cmp": "is_set"}}`, "Cookie", e.sessionToken, "X-CSRF-Token", e.sessionCSRF); r.Code != http.StatusOK {
			t.Fatalf("count with CSRF: %d %s", r.Code, r.Body)
		}
	})
}

func TestSegmentCountMatchesSQL(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		trees := []string{
			`{"field": "region", "cmp": "eq", "value": "上海"}`,
			fmt.Sprintf(`{"op": "and", "children": [{"tag": {"match": "any", "ids": [%d]}}, {"field": "region", "cmp": "ne", "value": "北京"}]}`, e.vip),
			fmt.Sprintf(`{"op": "or", "children": [{"tag": {"match": "none", "ids": [%d]}}, {"field": "name", "cmp": "contains", "value": "客户1"}]}`, e.vip),
			`{"field": "created_at", "cmp": "before", "value": "2025-01-02"}`,
			`{"op": "not", "children": [{"field": "owner", "cmp": "is_set"}]}`,
		}
		for _, tree := range trees {
			got := e.must(http.StatusOK, "POST", "/api/v1/segments/count", e.opKey, `{"tree": `+tree+`}`)
			if want := len(e.sqlMembers(tree)); segNum(got["count"]) != int64(want) || got["source"] != e.source() {
				t.Errorf("count %s: %v, want %d from %s", tree, got, want, e.source())
			}
			if _, ok := got["took_ms"].(float64); !ok {
				t.Errorf("no took_ms: %v", got)
			}
			// Sales: the same tree, within its own customers.
			scoped := fmt.Sprintf(`{"op": "and", "children": [%s, {"field": "owner", "cmp": "eq", "value": %d}]}`, tree, e.sales.ID)
			got = e.must(http.StatusOK, "POST", "/api/v1/segments/count", e.salesKey, `{"tree": `+tree+`}`)
			if want := len(e.sqlMembers(scoped)); segNum(got["count"]) != int64(want) {
				t.Errorf("sales count %s: %v, want %d", tree, got["count"], want)
			}
		}
	})
}

func TestSegmentMembersPaging(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		tree := fmt.Sprintf(`{"op": "or", "children": [{"field": "region", "cmp": "eq", "value": "上海"}, {"tag": {"match": "any", "ids": [%d]}}]}`, e.vip)
		id := e.save("上海 or VIP", tree)
		page := func(key string) []int64 {
			var all []int64
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d/members?limit=7&cursor=%s", id, cursor), key, nil)
				if got["source"] != e.source() {
					t.Fatalf("source %v", got["source"])
				}
				cs := ids(t, got)
				if len(cs) > 7 {
					t.Fatalf("page of %d", len(cs))
				}
				for _, c := range got["customers"].([]any) {
					if c.(map[string]any)["name"] == "" {
						t.Fatalf("customer row without its name: %v", c)
					}
				}
				all = append(all, cs...)
				next, _ := got["next_cursor"].(string)
				if next == "" {
					return all
				}
				cursor = next
			}
		}
		if got, want := page(e.opKey), e.sqlMembers(tree); !reflect.DeepEqual(got, want) {
			t.Fatalf("pages cover %v, want %v", got, want)
		}
		var mine []int64
		for _, c := range e.sqlMembers(tree) {
			for _, o := range e.owned {
				if c == o {
					mine = append(mine, c)
				}
			}
		}
		if got := page(e.salesKey); !reflect.DeepEqual(got, mine) || len(mine) == 0 {
			t.Fatalf("sales sees %v, want its own %v", got, mine)
		}
		for _, q := range []string{"cursor=abc", "limit=0", "limit=5000"} {
			if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/members?%s", id, q), e.opKey, nil); r.Code != http.StatusBadRequest && r.Code != http.StatusUnprocessableEntity {
				t.Errorf("%s: %d", q, r.Code)
			}
		}
		if r := e.call("GET", "/api/v1/segments/999/members", e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("members of an unknown segment: %d", r.Code)
		}
	})
}

func TestSegmentExport(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		tree := `{"field": "region", "cmp": "eq", "value": "北京"}`
		id := e.save("北京客户", tree)
		want := e.sqlMembers(tree)

		r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/export?format=csv", id), e.opKey, nil)
		if r.Code != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("csv: %d %v", r.Code, r.Header)
		}
		if !bytes.HasPrefix(r.Body, []byte("\xEF\xBB\xBF")) {
			t.Fatal("csv without the UTF-8 byte order mark")
		}
		recs, err := csv.NewReader(bytes.NewReader(r.Body[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(recs[0], ",") != "id,name,phone,email,gender,region,source,owner,created_at,tags" {
			t.Fatalf("header %v", recs[0])
		}
		checkRows := func(rows [][]string) {
			t.Helper()
			if len(rows) != len(want) {
				t.Fatalf("%d rows, want %d", len(rows), len(want))
			}
			for i, row := range rows {
				id := want[i]
				if row[0] != strconv.FormatInt(id, 10) || row[5] != "北京" || row[6] != "渠道活码" {
					t.Fatalf("row %v for customer %d", row, id)
				}
				if id != 7 && row[1] != fmt.Sprintf("客户%d", id) {
					t.Fatalf("name %q for customer %d", row[1], id)
				}
				if wantTag := id%5 == 0; (row[9] == "VIP") != wantTag {
					t.Fatalf("tags %q for customer %d", row[9], id)
				}
				if id%3 == 1 && row[7] != e.operator.Name {
					t.Fatalf("owner %q for customer %d", row[7], id)
				}
			}
		}
		checkRows(recs[1:])
		if recs[4][1] != `'=HYPERLINK("x")` {
			t.Fatalf("a formula-looking name is not defused: %q", recs[4][1])
		}

		r = e.call("GET", fmt.Sprintf("/api/v1/segments/%d/export?format=xlsx", id), e.opKey, nil)
		if r.Code != http.StatusOK || r.Header.Get("X-Segment-Source") != e.source() {
			t.Fatalf("xlsx: %d %v", r.Code, r.Header)
		}
		f, err := excelize.OpenReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatalf("xlsx does not open: %v", err)
		}
		defer f.Close()
		rows, err := f.GetRows("Sheet1")
		if err != nil {
			t.Fatal(err)
		}
		if rows[0][1] != "name" {
			t.Fatalf("xlsx header %v", rows[0])
		}
		for i := range rows[1:] {
			for len(rows[1+i]) < len(segmentsvc.ExportColumns) {
				rows[1+i] = append(rows[1+i], "")
			}
		}
		checkRows(rows[1:])
		if rows[4][1] != `=HYPERLINK("x")` {
			t.Fatalf("xlsx name %q", rows[4][1])
		}
		if formula, _ := f.GetCellFormula("Sheet1", "B5"); formula != "" {
			t.Fatalf("a name became a formula: %q", formula)
		}

		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/export?format=pdf", id), e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "format" {
			t.Fatalf("pdf: %d %s", r.Code, r.Body)
		}
	})
}

func TestSegmentExplain(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		tree := fmt.Sprintf(`{"op": "and", "children": [{"field": "region", "cmp": "eq", "value": "上海"}, {"tag": {"match": "any", "ids": [%d]}}]}`, e.vip)
		id := e.save("上海 VIP", tree)
		// 10: 上海 and VIP; 4: 上海 only; 15: VIP only (北京), owned by sales.
		for _, c := range []struct {
			customer int64
			held     bool
			kids     []bool
		}{{10, true, []bool{true, true}}, {4, false, []bool{true, false}}, {15, false, []bool{false, true}}} {
			got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d/explain?customer=%d", id, c.customer), e.opKey, nil)
			ex := got["explanation"].(map[string]any)
			kids := ex["children"].([]any)
			if got["held"] != c.held || ex["held"] != c.held || got["source"] != e.source() || len(kids) != 2 {
				t.Fatalf("customer %d: %v", c.customer, got)
			}
			for i, k := range kids {
				km := k.(map[string]any)
				if km["held"] != c.kids[i] || km["path"] != fmt.Sprintf("children[%d]", i) || km["node"] == nil {
					t.Fatalf("customer %d node %d: %v", c.customer, i, km)
				}
			}
			post := e.must(http.StatusOK, "POST", "/api/v1/segments/explain", e.opKey, fmt.Sprintf(`{"tree": %s, "customer": %d}`, tree, c.customer))
			if !reflect.DeepEqual(post, got) {
				t.Fatalf("POST explain %v, GET %v", post, got)
			}
		}
		// Sales may explain its own customers only.
		e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d/explain?customer=15", id), e.salesKey, nil)
		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/explain?customer=10", id), e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("sales explaining another's customer: %d", r.Code)
		}
		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/explain?customer=9999", id), e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("unknown customer: %d", r.Code)
		}
		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/explain", id), e.opKey, nil); r.Code != http.StatusBadRequest {
			t.Fatalf("no customer: %d", r.Code)
		}
	})
}

func TestSegmentHistory(t *testing.T) {
	eachSegEnv(t, func(t *testing.T, e *segEnv) {
		id := e.save("上海", `{"field": "region", "cmp": "eq", "value": "上海"}`)
		clock := time.Date(2025, 3, 1, 16, 10, 0, 0, time.UTC) // 2025-03-02 00:10 in Shanghai
		e.st.SetClock(func() time.Time { return clock })
		svc := segmentsvc.New(e.st, e.engine, nil)
		for i := 0; i < 3; i++ {
			if err := svc.RecordCounts(e.ctx); err != nil {
				t.Fatal(err)
			}
			clock = clock.Add(24 * time.Hour)
		}
		clock = clock.Add(-24 * time.Hour) // today is the day last recorded, 2025-03-04
		got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d/history?days=2", id), e.opKey, nil)
		days := got["days"].([]any)
		if len(days) != 2 || days[0].(map[string]any)["day"] != "2025-03-03" || days[1].(map[string]any)["day"] != "2025-03-04" || segNum(days[1].(map[string]any)["count"]) != 30 {
			t.Fatalf("history %v", got)
		}
		if got := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d/history", id), e.opKey, nil); len(got["days"].([]any)) != 3 {
			t.Fatalf("30 days: %v", got)
		}
		seg := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d", id), e.opKey, nil)
		if lc := seg["last_count"].(map[string]any); lc["day"] != "2025-03-04" {
			t.Fatalf("last count %v", lc)
		}
		if seg := e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/segments/%d", id), e.salesKey, nil); seg["last_count"] != nil {
			t.Fatalf("sales sees the unscoped recorded count: %v", seg["last_count"])
		}
		if r := e.call("GET", fmt.Sprintf("/api/v1/segments/%d/history?days=0", id), e.opKey, nil); r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("days=0: %d", r.Code)
		}
		if r := e.call("GET", "/api/v1/segments/999/history", e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("unknown segment: %d", r.Code)
		}
	})
}

func TestSegmentTreeErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := &segEnv{apiEnv: newAPIEnv(t, st)}
		for _, c := range []struct {
			body, field, msg string
		}{
			{`{"tree": {"op": "and", "children": [{"field": "name", "cmp": "is_set"}, {"field": "shoe_size", "cmp": "eq", "value": 42}]}}`, "tree.children[1].field", "unknown field"},
			{`{"tree": {"op": "xor", "children": [{"field": "name", "cmp": "is_set"}]}}`, "tree.op", "unknown operator"},
			{`{"tree": {"field": "region", "cmp": "gt", "value": "上海"}}`, "tree.cmp", "does not apply"},
			{`{"tree": {"op": "or", "children": [{"tag": {"match": "any", "ids": [404]}}]}}`, "tree.children[0].tag.ids[0]", "no tag 404"},
			{`{"tree": {"segment": 77}}`, "tree.segment", "no segment 77"},
			{`{"tree": {"field": "name", "cmp": "is_set", "colour": "red"}}`, "tree.colour", "unknown key"},
			{`{"tree": {"op": "and", "children": [{"field": "name", "cmp": "is_set"}, {"not": {"segment": 1}}]}}`, "tree.children[1].not", "unknown key"},
			{`{"tree": null}`, "tree", "no condition"},
			{`{"tree": []}`, "tree", "invalid JSON"},
		} {
			r := e.call("POST", "/api/v1/segments/count", e.opKey, c.body)
			if r.Code != http.StatusUnprocessableEntity || r.field(t) != c.field || !strings.Contains(string(r.Body), c.msg) || !strings.Contains(string(r.Body), `"invalid_tree"`) {
				t.Errorf("%s: %d %s, want 422 on %s", c.body, r.Code, r.Body, c.field)
			}
		}
		for _, body := range []string{`{"tree": {"field": "name", "cmp": "is_set"}, "extra": 1}`, `[1]`, `{"tree": {"field": "name", "cmp": "is_set"}} {}`, `{"tree": {"field": "name"`} {
			if r := e.call("POST", "/api/v1/segments/count", e.opKey, body); r.Code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", body, r.Code, r.Body)
			}
		}

		// 10,000 levels of nesting: refused at once, before decoding.
		deep := strings.Repeat(`{"op": "not", "children": [`, 10000) + `{"field": "name", "cmp": "is_set"}` + strings.Repeat(`]}`, 10000)
		start := time.Now()
		r := e.call("POST", "/api/v1/segments/count", e.opKey, `{"tree": `+deep+`}`)
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != "tree" || !strings.Contains(string(r.Body), "deeper") || time.Since(start) > 2*time.Second {
			t.Fatalf("10,000 levels: %d %s in %v", r.Code, r.Body, time.Since(start))
		}
		// 33 levels: one too many, caught by validation with the node named.
		r = e.call("POST", "/api/v1/segments", e.opKey, `{"name": "deep", "tree": `+strings.Repeat(`{"op": "not", "children": [`, 33)+`{"field": "name", "cmp": "is_set"}`+strings.Repeat(`]}`, 33)+`}`)
		if r.Code != http.StatusUnprocessableEntity || !strings.HasPrefix(r.field(t), "tree.children[0].children[0]") {
			t.Fatalf("33 levels: %d %s", r.Code, r.Body)
		}

		// 5 MB: 413 from the body limit, without reading it all.
		huge := `{"tree": {"field": "name", "cmp": "eq", "value": "` + strings.Repeat("x", 5<<20) + `"}}`
		start = time.Now()
		r = e.call("POST", "/api/v1/segments/count", e.opKey, huge)
		if r.Code != http.StatusRequestEntityTooLarge || time.Since(start) > 2*time.Second {
			t.Fatalf("5 MB tree: %d %s in %v", r.Code, r.Body[:min(len(r.Body), 200)], time.Since(start))
		}
		if r := e.call("POST", "/api/v1/segments", e.opKey, huge); r.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("5 MB segment: %d", r.Code)
		}
	})
}
