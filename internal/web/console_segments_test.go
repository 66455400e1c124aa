package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

const xss = `<script>alert(1)</script>`

// location is the path a 303 answer sends the browser to.
func location(t *testing.T, r consoleResp) string {
	t.Helper()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s %s: status %d, want 303\n%s", r.Method, r.Target, r.StatusCode, excerpt(r.Body))
	}
	return r.Header.Get("Location")
}

// idAfter is the number that ends a path such as /segments/12 (before any # or ?).
func idAfter(t *testing.T, path, prefix string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		t.Fatalf("%q does not start with %q", path, prefix)
	}
	if i := strings.IndexAny(rest, "#?/"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func TestConsoleTagsAndSegments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		op := consoleSignIn(t, st, "wang", staff.Operator)
		sales := consoleSignIn(t, st, "li", staff.Sales)
		cid := consoleCustomer(t, st, "u1", &customer.Patch{Name: sp(xss), Region: sp("上海")})
		other := consoleCustomer(t, st, "u2", &customer.Patch{Name: sp("张三"), Region: sp("北京")})
		scid, soth := strconv64(cid), strconv64(other)

		// A tag group and a tag, both named to try escaping.
		loc := location(t, e.post(op, "/tags/groups", url.Values{"name": {xss + "组"}, "kind": {"attribute"}}))
		gid := idAfter(t, loc, "/tags#group-")
		location(t, e.post(op, "/tags", url.Values{"group": {gid}, "name": {"VIP" + xss}, "color": {"#aa3300"}}))
		page := e.get(op, "/tags")
		page.want(t, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;组", "VIP&lt;script&gt;", `fill="#aa3300"`)
		page.lacks(t, xss)
		groups, err := st.ListTagGroups(t.Context())
		if err != nil || len(groups) != 1 || len(groups[0].Tags) != 1 {
			t.Fatalf("groups %+v, %v", groups, err)
		}
		tid := strconv64(groups[0].Tags[0].ID)

		// Every form wants the session's CSRF token.
		e.post(op, "/tags/groups", url.Values{"name": {"x"}, "kind": {"custom"}, "csrf": {"wrong"}}).want(t, http.StatusForbidden)
		e.post(op, "/customers/"+scid+"/tags", url.Values{"tag": {tid}, "csrf": {""}}).want(t, http.StatusForbidden)

		// Tag a customer on the profile; the tag and its history show, escaped.
		location(t, e.post(op, "/customers/"+scid+"/tags", url.Values{"tag": {tid}}))
		prof := e.get(op, "/customers/"+scid)
		prof.want(t, http.StatusOK, `id="tags"`, "VIP&lt;script&gt;", "标签历史", "/customers/"+scid+"/tags/"+tid+"/remove")
		prof.lacks(t, xss)

		// Sales may not open tag or segment editing, nor tag another's customer.
		for _, p := range []string{"/tags", "/tags/rules", "/tags/rules/new", "/segments", "/segments/new"} {
			e.get(sales, p).want(t, http.StatusForbidden, "没有权限")
		}
		e.post(sales, "/tags/groups", url.Values{"name": {"s"}, "kind": {"custom"}}).want(t, http.StatusForbidden)
		e.post(sales, "/customers/"+soth+"/tags", url.Values{"tag": {tid}}).want(t, http.StatusNotFound)
		e.get(sales, "/").lacks(t, `href="/tags"`, `href="/segments"`)

		// The builder without JavaScript: count, then save.
		tree := `{"op":"and","children":[{"tag":{"match":"any","ids":[` + tid + `]}},{"field":"region","cmp":"eq","value":"上海"}]}`
		cnt := e.post(op, "/segments/new", url.Values{"name": {"上海 VIP"}, "tree": {tree}, "action": {"count"}})
		cnt.want(t, http.StatusOK, `<strong>1</strong>`, "上海 VIP", "data-builder=")
		bad := e.post(op, "/segments/new", url.Values{"name": {"坏"}, "tree": {`{"op":"and","children":[{"field":"nope","cmp":"eq","value":1}]}`}})
		bad.want(t, http.StatusUnprocessableEntity, "条件有误", "tree.children[0].field")
		loc = location(t, e.post(op, "/segments/new", url.Values{"name": {"上海 VIP" + xss}, "tree": {tree}, "action": {"save"}}))
		sid := idAfter(t, loc, "/segments/")
		seg := e.get(op, loc)
		seg.want(t, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;", "/customers/"+scid, "/api/v1/segments/"+sid+"/export?format=csv", "format=xlsx")
		seg.lacks(t, xss, "/customers/"+soth+`"`)
		why := e.get(op, loc+"?explain="+scid)
		why.want(t, http.StatusOK, "在这个人群里", "满足全部", "有任一标签 VIP&lt;script&gt;", "地区 等于 上海")
		e.get(op, loc+"?explain="+soth).want(t, http.StatusOK, "不在这个人群里")
		list := e.get(op, "/segments")
		list.want(t, http.StatusOK, "上海 VIP&lt;script&gt;", `class="num big-num">1<`)
		list.lacks(t, xss)

		// A tag rule with a property condition, its back-fill, and a group delete that asks.
		rl := location(t, e.post(op, "/tags/rules/new", url.Values{
			"name": {"大单"}, "enabled": {"on"}, "kind": {"event"}, "event": {"Order Completed"},
			"where_prop": {"total", ""}, "where_cmp": {"gte", "eq"}, "where_value": {"500", ""}, "add": {tid},
		}))
		rid := idAfter(t, rl, "/tags/rules/")
		rule, err := st.TagRule(t.Context(), atoi(t, rid))
		if err != nil || rule.Trigger.Event == nil || len(rule.Trigger.Event.Where) != 1 || rule.Trigger.Event.Where[0].Value != 500.0 {
			t.Fatalf("rule %+v, %v", rule, err)
		}
		e.get(op, "/tags/rules").want(t, http.StatusOK, "大单", "Order Completed", "+ VIP&lt;script&gt;")
		e.get(op, rl).want(t, http.StatusOK, `value="total"`, "开始回溯")
		location(t, e.post(op, rl+"/backfill", nil))
		e.post(op, "/tags/rules/new", url.Values{"name": {"坏"}, "kind": {"event"}, "event": {""}, "add": {tid}}).want(t, http.StatusUnprocessableEntity, "trigger.event.name")
		ask := e.get(op, "/tags/groups/"+gid+"/delete")
		ask.want(t, http.StatusOK, "这些标签怎么处理", `value="delete_tags"`, "大单")
		e.post(op, "/tags/groups/"+gid+"/delete", url.Values{"confirm": {"yes"}, "mode": {"delete_tags"}}).want(t, http.StatusUnprocessableEntity, "标签规则 大单")
		e.post(op, "/tags/tag/"+tid+"/delete", url.Values{}).want(t, http.StatusOK, "大单")
	})
}

func strconv64(n int64) string { return strconv.FormatInt(n, 10) }

// The builder script's words, the operators it offers and the field names are looked up
// from Go by built keys, which the template scan does not see.
func TestBuilderMessageKeysExist(t *testing.T) {
	var keys []string
	for _, k := range builderLabels {
		keys = append(keys, "builder."+k)
	}
	for _, c := range cmpKeys() {
		keys = append(keys, "cmp."+c)
	}
	for f := range segment.ProfileFields {
		keys = append(keys, "seg.field."+f)
	}
	for m := range segment.OrderMetrics {
		keys = append(keys, "seg.order."+m)
	}
	for h := range segment.HabitKinds {
		keys = append(keys, "seg.habit."+h)
	}
	for _, k := range []string{"tag_kind.", "tag_kind_hint."} {
		for _, kind := range []string{"follow_up", "source", "attribute", "campaign", "custom"} {
			keys = append(keys, k+kind)
		}
	}
	for _, s := range []string{"running", "done", "failed"} {
		keys = append(keys, "backfill.state."+s)
	}
	for _, r := range []string{"manual", "rule", "import", "survey", "wecom", "model", "merge"} {
		keys = append(keys, "tag_reason."+r)
	}
	keys = append(keys, "tag_action.add", "tag_action.remove", "source.engine", "source.sql",
		"explain.op.and", "explain.op.or", "explain.op.not", "describe.tag.any", "describe.tag.all", "describe.tag.none",
		"builder.timing.first", "builder.timing.last")
	for _, k := range keys {
		for _, lang := range locale.Languages {
			if !locale.Has(lang, k) {
				t.Errorf("%q missing in %s.json", k, lang)
			}
		}
	}
}
