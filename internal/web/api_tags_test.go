package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// tagEnv is an API environment whose server the test keeps (for back-fill jobs), with a
// follow-up group (single-choice: 待跟进, 已成交), an attribute group (高消费, 沉默) and
// customers: two owned by the sales person, two by nobody.
type tagEnv struct {
	*apiEnv
	srv                        *Server
	follow, attr               int64 // group ids
	todo, won, big, quiet      int64 // tag ids
	own1, own2, other1, other2 int64 // customer ids
}

func newTagEnv(t *testing.T, st *store.Store, eng *audience.Engine) *tagEnv {
	t.Helper()
	e := &tagEnv{apiEnv: newAPIEnv(t, st)}
	e.srv = &Server{Store: st, Audience: eng, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.h = e.srv.Handler()
	group := func(name string, kind tag.Kind, excl bool) int64 {
		g := e.must(http.StatusCreated, "POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": name, "kind": kind, "exclusive": excl})
		return int64(g["id"].(float64))
	}
	mk := func(g int64, name string) int64 {
		tg := e.must(http.StatusCreated, "POST", "/api/v1/tags", e.opKey, map[string]any{"group_id": g, "name": name})
		return int64(tg["id"].(float64))
	}
	e.follow, e.attr = group("跟进状态", tag.FollowUp, true), group("属性", tag.Attribute, false)
	e.todo, e.won = mk(e.follow, "待跟进"), mk(e.follow, "已成交")
	e.big, e.quiet = mk(e.attr, "高消费"), mk(e.attr, "沉默")
	cust := func(uid string, owner string) int64 {
		body := map[string]any{"identities": []any{map[string]any{"kind": "user_id", "value": uid}}, "name": uid}
		if owner != "" {
			body["owner"] = owner
		}
		return e.create(e.adminKey, body)
	}
	e.own1, e.own2 = cust("own1", e.salesLogin), cust("own2", e.salesLogin)
	e.other1, e.other2 = cust("other1", ""), cust("other2", "")
	t.Cleanup(e.srv.tagJobs.Wait)
	return e
}

// tagsOf lists a customer's tag ids straight from the store.
func (e *tagEnv) tagsOf(id int64) []int64 {
	e.t.Helper()
	as, err := e.st.CustomerTags(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	out := []int64{}
	for _, a := range as {
		out = append(out, a.Tag.ID)
	}
	return out
}

func intOf(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestTagsAPICRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		// Validation names the field; roles are checked; unknown ids are 404.
		if r := e.call("POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": "  "}); r.Code != 422 || r.field(t) != "name" {
			t.Errorf("blank group name: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": "x", "kind": "weird"}); r.Code != 422 || r.field(t) != "kind" {
			t.Errorf("bad kind: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": "属性"}); r.Code != 422 || r.field(t) != "name" {
			t.Errorf("duplicate group: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tags", e.opKey, map[string]any{"group_id": e.attr, "name": "红", "color": "red"}); r.Code != 422 || r.field(t) != "color" {
			t.Errorf("bad color: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tags", e.opKey, map[string]any{"name": "孤儿"}); r.Code != 422 || r.field(t) != "group_id" {
			t.Errorf("no group: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tags", e.opKey, map[string]any{"group_id": 9999, "name": "孤儿"}); r.Code != 422 || r.field(t) != "group_id" {
			t.Errorf("unknown group: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tag-groups", e.salesKey, map[string]any{"name": "sales group"}); r.Code != 403 {
			t.Errorf("sales creates a group: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/tags", "", map[string]any{"group_id": e.attr, "name": "x"}); r.Code != 401 {
			t.Errorf("no key: %d", r.Code)
		}
		if r := e.call("PATCH", "/api/v1/tags/9999", e.opKey, map[string]any{"name": "x"}); r.Code != 404 {
			t.Errorf("patch unknown tag: %d", r.Code)
		}
		// Rename and recolour a tag; rename a group.
		tg := e.must(200, "PATCH", fmt.Sprint("/api/v1/tags/", e.big), e.opKey, map[string]any{"name": "高消费客户", "color": "#ff0000"})
		if tg["name"] != "高消费客户" || tg["color"] != "#ff0000" || intOf(tg["group_id"]) != e.attr {
			t.Errorf("patched tag %v", tg)
		}
		g := e.must(200, "PATCH", fmt.Sprint("/api/v1/tag-groups/", e.attr), e.opKey, map[string]any{"name": "客户属性"})
		if g["name"] != "客户属性" || g["kind"] != "attribute" {
			t.Errorf("patched group %v", g)
		}
		// Counts in GET /tags, for every role that reads.
		e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.big}, "customers": []int64{e.own1, e.other1}})
		list := e.must(200, "GET", "/api/v1/tags", e.salesKey, nil)
		groups := list["groups"].([]any)
		if len(groups) != 2 {
			t.Fatalf("groups %v", groups)
		}
		attrTags := groups[1].(map[string]any)["tags"].([]any)
		if c := attrTags[0].(map[string]any); intOf(c["id"]) != e.big || intOf(c["customers"]) != 2 {
			t.Errorf("count of 高消费: %v", c)
		}
		if c := attrTags[1].(map[string]any); intOf(c["customers"]) != 0 {
			t.Errorf("count of 沉默: %v", c)
		}
		gl := e.must(200, "GET", "/api/v1/tag-groups", e.opKey, nil)["groups"].([]any)
		if len(gl[0].(map[string]any)["tags"].([]any)) != 2 {
			t.Errorf("tag groups %v", gl)
		}
		// Making the attribute group single-choice would break it for nobody; the
		// follow-up group stays single-choice. Give a customer two attribute tags: now it
		// would, and 409 says how many customers.
		e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "customers": []int64{e.own1}})
		r := e.call("PATCH", fmt.Sprint("/api/v1/tag-groups/", e.attr), e.opKey, map[string]any{"exclusive": true})
		if r.Code != 409 || !strings.Contains(string(r.Body), "1 customers") {
			t.Errorf("exclusive conflict: %d %s", r.Code, r.Body)
		}
		// Deleting a tag takes it off its holders.
		del := e.must(200, "DELETE", fmt.Sprint("/api/v1/tags/", e.big), e.opKey, nil)
		if intOf(del["removed"]) != 2 {
			t.Errorf("delete tag: %v", del)
		}
		if r := e.call("DELETE", fmt.Sprint("/api/v1/tags/", e.big), e.opKey, nil); r.Code != 404 {
			t.Errorf("delete again: %d", r.Code)
		}
	})
}

func TestTagGroupDeleteModes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.big, e.quiet}, "customers": []int64{e.own1}})
		path := fmt.Sprint("/api/v1/tag-groups/", e.attr)
		r := e.call("DELETE", path, e.opKey, nil)
		if r.Code != 422 || r.field(t) != "mode" || !strings.Contains(string(r.Body), "move_tags") {
			t.Errorf("no mode: %d %s", r.Code, r.Body)
		}
		if r := e.call("DELETE", path+"?mode=move_tags", e.opKey, nil); r.Code != 422 || r.field(t) != "into" {
			t.Errorf("move without into: %d %s", r.Code, r.Body)
		}
		// Moving two tags a customer holds into a single-choice group is a conflict.
		r = e.call("DELETE", fmt.Sprint(path, "?mode=move_tags&into=", e.follow), e.opKey, nil)
		if r.Code != 409 || !strings.Contains(string(r.Body), "1 customers") {
			t.Errorf("move into single-choice: %d %s", r.Code, r.Body)
		}
		other := int64(e.must(201, "POST", "/api/v1/tag-groups", e.opKey, map[string]any{"name": "其他"})["id"].(float64))
		e.must(200, "DELETE", fmt.Sprint(path, "?mode=move_tags&into=", other), e.opKey, nil)
		if tg, err := st.Tag(e.ctx, e.big); err != nil || tg.GroupID != other {
			t.Fatalf("moved tag %+v %v", tg, err)
		}
		if got := e.tagsOf(e.own1); len(got) != 2 {
			t.Errorf("assignments after the move: %v", got)
		}
		// A tag a rule uses cannot go with its group: 409 names how many rules.
		for i := range 2 {
			e.must(201, "POST", "/api/v1/tag-rules", e.opKey, map[string]any{"name": fmt.Sprint("r", i),
				"trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "Signed Up"}}, "actions": map[string]any{"add": []int64{e.quiet}}})
		}
		otherPath := fmt.Sprint("/api/v1/tag-groups/", other)
		r = e.call("DELETE", otherPath+"?mode=delete_tags", e.opKey, nil)
		if r.Code != 409 || !strings.Contains(string(r.Body), "2 tag rules") {
			t.Errorf("delete a group with a rule's tag: %d %s", r.Code, r.Body)
		}
		if r := e.call("DELETE", fmt.Sprint("/api/v1/tags/", e.quiet), e.opKey, nil); r.Code != 409 || !strings.Contains(string(r.Body), "2 tag rules") {
			t.Errorf("delete a rule's tag: %d %s", r.Code, r.Body)
		}
		rules := e.must(200, "GET", "/api/v1/tag-rules", e.opKey, nil)["rules"].([]any)
		for _, rl := range rules {
			e.must(204, "DELETE", fmt.Sprint("/api/v1/tag-rules/", intOf(rl.(map[string]any)["id"])), e.opKey, nil)
		}
		del := e.must(200, "DELETE", otherPath+"?mode=delete_tags", e.opKey, nil)
		if intOf(del["removed"]) != 2 || len(e.tagsOf(e.own1)) != 0 {
			t.Errorf("delete_tags: %v, customer keeps %v", del, e.tagsOf(e.own1))
		}
		hist := e.must(200, "GET", fmt.Sprint("/api/v1/customers/", e.own1, "/tag-history"), e.opKey, nil)["history"].([]any)
		if h := hist[0].(map[string]any); h["action"] != "remove" || intOf(h["by"]) != e.operator.ID || h["reason"] != "manual" {
			t.Errorf("history of the deletion: %v", h)
		}
	})
}

func TestCustomerTagsAndHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		path := fmt.Sprint("/api/v1/customers/", e.own1, "/tags")
		got := e.must(200, "POST", path, e.salesKey, map[string]any{"tags": []int64{e.todo, e.big}})
		if intOf(got["added"]) != 2 || intOf(got["removed"]) != 0 || len(got["tags"].([]any)) != 2 {
			t.Errorf("assign: %v", got)
		}
		// Single-choice: 已成交 replaces 待跟进.
		got = e.must(200, "POST", path, e.opKey, map[string]any{"tags": []int64{e.won}})
		if intOf(got["added"]) != 1 || intOf(got["removed"]) != 1 {
			t.Errorf("single-choice move: %v", got)
		}
		// Assigning what is held changes nothing.
		if got := e.must(200, "POST", path, e.opKey, map[string]any{"tags": []int64{e.won}}); intOf(got["added"]) != 0 {
			t.Errorf("idempotent: %v", got)
		}
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"tags": []int64{}}, "tags"},
			{map[string]any{"tags": []int64{9999}}, "tags[0]"},
			{map[string]any{"tags": []int64{e.big, e.big}}, "tags[1]"},
			{map[string]any{"tags": []int64{e.todo, e.won}}, "tags[1]"},
		} {
			if r := e.call("POST", path, e.opKey, c.body); r.Code != 422 || r.field(t) != c.field {
				t.Errorf("%v: %d %s, want 422 on %s", c.body, r.Code, r.Body, c.field)
			}
		}
		if r := e.call("POST", path, e.opKey, map[string]any{"tag": 1}); r.Code != 400 {
			t.Errorf("unknown field: %d", r.Code)
		}
		del := e.must(200, "DELETE", fmt.Sprint(path, "/", e.big), e.salesKey, nil)
		if intOf(del["removed"]) != 1 || len(del["tags"].([]any)) != 1 {
			t.Errorf("remove: %v", del)
		}
		if r := e.call("DELETE", fmt.Sprint(path, "/9999"), e.opKey, nil); r.Code != 404 {
			t.Errorf("remove an unknown tag: %d", r.Code)
		}
		// History: newest first, who and why.
		hist := e.must(200, "GET", fmt.Sprint("/api/v1/customers/", e.own1, "/tag-history?limit=2"), e.salesKey, nil)
		entries := hist["history"].([]any)
		if len(entries) != 2 || hist["next_before"] == nil {
			t.Fatalf("history page: %v", hist)
		}
		h0, h1 := entries[0].(map[string]any), entries[1].(map[string]any)
		if h0["action"] != "remove" || intOf(h0["tag_id"]) != e.big || intOf(h0["by"]) != e.sales.ID || h0["reason"] != "manual" {
			t.Errorf("newest entry %v", h0)
		}
		if intOf(h1["by"]) != e.operator.ID || h0["at"] == nil {
			t.Errorf("second entry %v", h1)
		}
		rest := e.must(200, "GET", fmt.Sprint("/api/v1/customers/", e.own1, "/tag-history?before=", intOf(hist["next_before"])), e.opKey, nil)["history"].([]any)
		if len(rest) != 3 { // add 待跟进, add 高消费, remove 待跟进 (the add 已成交 was on the first page)
			t.Errorf("rest of the history: %v", rest)
		}
		if r := e.call("GET", fmt.Sprint("/api/v1/customers/", e.own1, "/tag-history?before=x"), e.opKey, nil); r.Code != 400 {
			t.Errorf("bad before: %d", r.Code)
		}
		// Sales scope: another owner's customer does not exist for them.
		other := fmt.Sprint("/api/v1/customers/", e.other1)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", other + "/tags", nil},
			{"GET", other + "/tag-history", nil},
			{"POST", other + "/tags", map[string]any{"tags": []int64{e.big}}},
			{"DELETE", fmt.Sprint(other, "/tags/", e.big), nil},
		} {
			if r := e.call(c.method, c.path, e.salesKey, c.body); r.Code != 404 {
				t.Errorf("sales %s %s: %d, want 404", c.method, c.path, r.Code)
			}
		}
		if len(e.tagsOf(e.other1)) != 0 {
			t.Error("sales changed another owner's customer")
		}
		// A content key may not touch tags at all.
		_, contentKey, _ := st.CreateKey(e.ctx, staff.APIKey, "content", staff.Content, e.admin.ID)
		if r := e.call("GET", path, contentKey, nil); r.Code != 403 {
			t.Errorf("content reads tags: %d", r.Code)
		}
	})
}

func TestBulkTags(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		// By ids, unknown ones reported.
		got := e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.big, e.todo}, "customers": []int64{e.own1, e.own2, 9999, e.own1}})
		if intOf(got["customers"]) != 2 || intOf(got["added"]) != 4 || intOf(got["unknown_count"]) != 1 {
			t.Errorf("by ids: %v", got)
		}
		if u := got["unknown"].([]any)[0].(map[string]any); u["value"] != "9999" || u["reason"] != "no such customer" {
			t.Errorf("unknown %v", u)
		}
		// Exactly one target; sales may not change in bulk.
		if r := e.call("POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.big}}); r.Code != 422 || r.field(t) != "customers" {
			t.Errorf("no target: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.big}, "customers": []int64{1}, "segment_id": 1}); r.Code != 422 {
			t.Errorf("two targets: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tags/assign", e.salesKey, map[string]any{"tags": []int64{e.big}, "customers": []int64{e.own1}}); r.Code != 403 {
			t.Errorf("sales bulk: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.todo, e.won}, "customers": []int64{e.own1}}); r.Code != 422 || r.field(t) != "tags[1]" {
			t.Errorf("two single-choice tags: %d %s", r.Code, r.Body)
		}
		// By a segment tree: the holders of 高消费 get 沉默.
		tree := map[string]any{"tag": map[string]any{"match": "any", "ids": []int64{e.big}}}
		got = e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "segment": tree})
		if intOf(got["customers"]) != 2 || intOf(got["added"]) != 2 {
			t.Errorf("by segment: %v", got)
		}
		if r := e.call("POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "segment": map[string]any{"tag": map[string]any{"match": "any", "ids": []int64{9999}}}}); r.Code != 422 || !strings.HasPrefix(r.field(t), "segment") {
			t.Errorf("bad tree: %d %s", r.Code, r.Body)
		}
		// By a saved segment: everyone without 高消费.
		if _, err := st.DB().Exec(st.Rebind(`INSERT INTO segments (name, tree, created_at, updated_at) VALUES (?, ?, 0, 0)`), "普通",
			fmt.Sprintf(`{"tag":{"match":"none","ids":[%d]}}`, e.big)); err != nil {
			t.Fatal(err)
		}
		got = e.must(200, "POST", "/api/v1/tags/remove", e.opKey, map[string]any{"tags": []int64{e.quiet}, "segment_id": 1})
		if intOf(got["customers"]) != 2 || intOf(got["removed"]) != 0 {
			t.Errorf("by saved segment: %v", got)
		}
		if r := e.call("POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "segment_id": 99}); r.Code != 422 || r.field(t) != "segment_id" {
			t.Errorf("unknown segment: %d %s", r.Code, r.Body)
		}
		// By CSV: a header with customer_id among other columns, bad lines reported.
		csvBody := fmt.Sprintf("name,customer_id\nA,%d\nB,abc\nC,%d\n\nD,424242\n", e.other1, e.other2)
		csvPost := func(query, body string) apiResp {
			return e.call("POST", "/api/v1/tags/remove"+query, e.opKey, body, "Content-Type", "text/csv; charset=utf-8")
		}
		e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "customers": []int64{e.other1, e.other2}})
		if r := csvPost(fmt.Sprint("?strict=1&tags=", e.quiet), csvBody); r.Code != 422 || r.field(t) != "line 3" {
			t.Errorf("strict CSV: %d %s", r.Code, r.Body)
		}
		if len(e.tagsOf(e.other1)) != 1 {
			t.Fatal("strict CSV wrote something")
		}
		r := csvPost(fmt.Sprint("?tags=", e.quiet), csvBody)
		if r.Code != 200 {
			t.Fatalf("CSV: %d %s", r.Code, r.Body)
		}
		res := r.JSON(t)
		if intOf(res["customers"]) != 2 || intOf(res["removed"]) != 2 || intOf(res["unknown_count"]) != 2 {
			t.Errorf("CSV: %v", res)
		}
		unknown := res["unknown"].([]any)
		if u := unknown[0].(map[string]any); intOf(u["line"]) != 3 || u["value"] != "abc" {
			t.Errorf("bad line %v", u)
		}
		if u := unknown[1].(map[string]any); intOf(u["line"]) != 6 || u["reason"] != "no such customer" {
			t.Errorf("unknown line %v", u)
		}
		// One id per line, no header; a CSV without ids is 422.
		r = e.call("POST", fmt.Sprint("/api/v1/tags/assign?tags=", e.won), e.opKey, fmt.Sprintf("\ufeff%d\r\n%d\r\n", e.other1, e.other2), "Content-Type", "text/csv")
		if r.Code != 200 || intOf(r.JSON(t)["added"]) != 2 {
			t.Errorf("plain CSV: %d %s", r.Code, r.Body)
		}
		if r := csvPost(fmt.Sprint("?tags=", e.quiet), "name,phone\nA,1\n"); r.Code != 422 {
			t.Errorf("CSV without ids: %d %s", r.Code, r.Body)
		}
		if r := csvPost("", "1\n"); r.Code != 422 || r.field(t) != "tags" {
			t.Errorf("CSV without tags: %d %s", r.Code, r.Body)
		}
		// Every change recorded who did it.
		hist, err := st.TagHistory(e.ctx, e.other1, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			if h.By != e.operator.ID || h.Reason != tag.ReasonManual {
				t.Errorf("history %+v", h)
			}
		}
		if hist[0].Ref != "csv" {
			t.Errorf("ref of a CSV change: %q", hist[0].Ref)
		}
	})
}

// TestBulkTagsBySegmentUsesTheEngine checks the members come from a built audience engine.
func TestBulkTagsBySegmentUsesTheEngine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		eng := audience.New(st, audience.Options{Fallback: audience.SQLFallback{Store: st}})
		st.Subscribe(eng.Apply)
		e := newTagEnv(t, st, eng)
		if err := eng.Rebuild(e.ctx, nil); err != nil {
			t.Fatal(err)
		}
		e.must(200, "POST", fmt.Sprint("/api/v1/customers/", e.other2, "/tags"), e.opKey, map[string]any{"tags": []int64{e.big}})
		got := e.must(200, "POST", "/api/v1/tags/assign", e.opKey, map[string]any{"tags": []int64{e.quiet}, "segment": map[string]any{"tag": map[string]any{"match": "any", "ids": []int64{e.big}}}})
		if intOf(got["added"]) != 1 || len(e.tagsOf(e.other2)) != 2 {
			t.Errorf("by segment on the engine: %v", got)
		}
	})
}

func TestTagRulesAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		rule := map[string]any{"name": "大单成交",
			"trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "Order Completed", "where": []any{map[string]any{"prop": "total", "cmp": "gte", "value": 500}}}},
			"actions": map[string]any{"add": []int64{e.won, e.big}}}
		created := e.must(201, "POST", "/api/v1/tag-rules", e.opKey, rule)
		id := intOf(created["id"])
		if created["enabled"] != true || intOf(created["created_by"]) != e.operator.ID {
			t.Errorf("created %v", created)
		}
		for _, c := range []struct {
			body  map[string]any
			code  int
			field string
		}{
			{map[string]any{"name": "x", "trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "A"}}, "actions": map[string]any{"add": []int64{9999}}}, 422, "actions.add[0]"},
			{map[string]any{"name": "x", "trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "A", "where": []any{map[string]any{"prop": "total", "cmp": "gte", "value": "lots"}}}}, "actions": map[string]any{"add": []int64{e.big}}}, 422, "trigger.event.where[0].value"},
			{map[string]any{"name": "x", "trigger": map[string]any{"kind": "later"}, "actions": map[string]any{"add": []int64{e.big}}}, 422, "trigger.kind"},
			{map[string]any{"name": "x", "trigger": map[string]any{"kind": "condition", "condition": map[string]any{"field": "attrs.vip", "cmp": "eq", "value": 1}}, "actions": map[string]any{"add": []int64{e.big}}}, 422, "trigger.condition.field"},
			{map[string]any{"name": "x", "trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "A"}}, "actions": map[string]any{"add": []int64{e.todo, e.won}}}, 422, "actions.add[1]"},
			{map[string]any{"name": "", "trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "A"}}, "actions": map[string]any{"add": []int64{e.big}}}, 422, "name"},
			{map[string]any{"name": "x", "bogus": 1}, 400, "bogus"},
		} {
			r := e.call("POST", "/api/v1/tag-rules", e.opKey, c.body)
			if r.Code != c.code || r.field(t) != c.field {
				t.Errorf("%v: %d %s, want %d on %s", c.body, r.Code, r.Body, c.code, c.field)
			}
		}
		// A condition 10,000 levels deep is too deep to decode: the answer says so.
		deep := `{"name": "x", "trigger": {"kind": "condition", "condition": ` + strings.Repeat(`{"op": "not", "children": [`, 10000) + `{"field": "gender", "cmp": "eq", "value": "female"}` + strings.Repeat(`]}`, 10000) + `}, "actions": {"add": [1]}}`
		if r := e.call("POST", "/api/v1/tag-rules", e.opKey, deep); r.Code != 400 || !strings.Contains(string(r.Body), "depth") {
			t.Errorf("a 10,000-deep condition: %d %.200s, want 400 saying it is too deep", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/tag-rules", e.salesKey, rule); r.Code != 403 {
			t.Errorf("sales creates a rule: %d", r.Code)
		}
		path := fmt.Sprint("/api/v1/tag-rules/", id)
		got := e.must(200, "PATCH", path, e.opKey, map[string]any{"enabled": false})
		if got["enabled"] != false || got["name"] != "大单成交" || got["trigger"].(map[string]any)["event"].(map[string]any)["name"] != "Order Completed" {
			t.Errorf("patched %v", got)
		}
		if r := e.call("PATCH", path, e.opKey, map[string]any{"actions": map[string]any{}}); r.Code != 422 || r.field(t) != "actions" {
			t.Errorf("patch empty actions: %d %s", r.Code, r.Body)
		}
		if got := e.must(200, "GET", path, e.salesKey, nil); got["enabled"] != false {
			t.Errorf("get %v", got)
		}
		if rules := e.must(200, "GET", "/api/v1/tag-rules", e.opKey, nil)["rules"].([]any); len(rules) != 1 {
			t.Errorf("list %v", rules)
		}
		if r := e.call("GET", path+"/backfill", e.opKey, nil); r.Code != 404 {
			t.Errorf("no back-fill yet: %d", r.Code)
		}
		e.must(204, "DELETE", path, e.opKey, nil)
		if r := e.call("GET", path, e.opKey, nil); r.Code != 404 {
			t.Errorf("deleted rule: %d", r.Code)
		}
		if r := e.call("POST", path+"/backfill", e.opKey, nil); r.Code != 404 {
			t.Errorf("back-fill of a deleted rule: %d", r.Code)
		}
	})
}

func TestTagRuleBackfillJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		// Past events: two customers checked in.
		var evts []*event.Event
		for i, c := range []int64{e.own1, e.other1, e.own1} {
			evts = append(evts, &event.Event{MessageID: fmt.Sprint("past", i), CustomerID: c, Type: "track", Name: "Checked In", Timestamp: time.Date(2025, 3, 1, 9, i, 0, 0, time.UTC)})
		}
		if err := st.InTx(e.ctx, func(tx *store.Tx) error { _, err := tx.InsertEvents(evts); return err }); err != nil {
			t.Fatal(err)
		}
		rule := e.must(201, "POST", "/api/v1/tag-rules", e.opKey, map[string]any{"name": "打卡",
			"trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "Checked In"}}, "actions": map[string]any{"add": []int64{e.big}}})
		path := fmt.Sprint("/api/v1/tag-rules/", intOf(rule["id"]), "/backfill")
		job := e.must(202, "POST", path, e.opKey, nil)
		if job["state"] != "running" || intOf(job["id"]) == 0 {
			t.Errorf("started %v", job)
		}
		e.srv.tagJobs.Wait()
		got := e.must(200, "GET", path, e.salesKey, nil)
		if got["state"] != "done" || intOf(got["done"]) != 3 || intOf(got["total"]) != 3 || intOf(got["added"]) != 2 || got["finished_at"] == nil {
			t.Errorf("finished job %v", got)
		}
		if len(e.tagsOf(e.own1)) != 1 || len(e.tagsOf(e.other1)) != 1 {
			t.Error("back-fill did not tag")
		}
		if r, _ := st.TagRule(e.ctx, intOf(rule["id"])); r.BackfilledAt.IsZero() {
			t.Error("backfilled_at not set")
		}
		// A condition rule: the holders of 高消费 get 沉默; a second job adds nothing.
		cond := e.must(201, "POST", "/api/v1/tag-rules", e.opKey, map[string]any{"name": "沉默高消费",
			"trigger": map[string]any{"kind": "condition", "condition": map[string]any{"tag": map[string]any{"match": "any", "ids": []int64{e.big}}}},
			"actions": map[string]any{"add": []int64{e.quiet}}})
		cpath := fmt.Sprint("/api/v1/tag-rules/", intOf(cond["id"]), "/backfill")
		for _, want := range []int64{2, 0} {
			e.must(202, "POST", cpath, e.opKey, nil)
			e.srv.tagJobs.Wait()
			got = e.must(200, "GET", cpath, e.opKey, nil)
			if got["state"] != "done" || intOf(got["total"]) != 2 || intOf(got["added"]) != want {
				t.Errorf("condition job %v, want added %d", got, want)
			}
		}
		if r := e.call("POST", cpath, e.salesKey, nil); r.Code != 403 {
			t.Errorf("sales back-fills: %d", r.Code)
		}
	})
}

// TestTrackTagsInTheSameCommit sends a track through the real ingestion handler: when its
// 200 arrives, the event rule's tag is already there.
func TestTrackTagsInTheSameCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newTagEnv(t, st, nil)
		e.must(201, "POST", "/api/v1/tag-rules", e.opKey, map[string]any{"name": "大单成交",
			"trigger": map[string]any{"kind": "event", "event": map[string]any{"name": "Order Completed", "where": []any{map[string]any{"prop": "total", "cmp": "gte", "value": 500}}}},
			"actions": map[string]any{"add": []int64{e.won}}})
		_, writeKey, err := st.CreateKey(e.ctx, staff.WriteKey, "shop", "", e.admin.ID)
		if err != nil {
			t.Fatal(err)
		}
		track := func(user string, total float64) {
			t.Helper()
			body := fmt.Sprintf(`{"userId":%q,"event":"Order Completed","properties":{"order_id":"o-%s","total":%v,"currency":"CNY"}}`, user, user, total)
			req := httptest.NewRequest("POST", "/v1/track", strings.NewReader(body))
			req.SetBasicAuth(writeKey, "")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("track: %d %s", rec.Code, rec.Body)
			}
		}
		track("own1", 800)
		track("other1", 20)
		if got := e.tagsOf(e.own1); len(got) != 1 || got[0] != e.won {
			t.Errorf("own1 after a big order: %v", got)
		}
		if got := e.tagsOf(e.other1); len(got) != 0 {
			t.Errorf("other1 after a small order: %v", got)
		}
		// A new customer, created by the track itself, is tagged too.
		track("newcomer", 900)
		newcomer, err := st.CustomerByIdentity(e.ctx, customer.Identity{Kind: customer.UserID, Value: "newcomer"})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.tagsOf(newcomer); len(got) != 1 {
			t.Errorf("newcomer: %v", got)
		}
		hist, _ := st.TagHistory(e.ctx, e.own1, 0, 1)
		if len(hist) != 1 || hist[0].Reason != tag.ReasonRule || hist[0].Ref != "rule:1" {
			t.Errorf("history %+v", hist)
		}
	})
}
