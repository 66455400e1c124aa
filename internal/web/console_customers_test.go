package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// consoleCustomer creates a customer known by a user id and applies p to it.
func consoleCustomer(t *testing.T, st *store.Store, userID string, p *customer.Patch) int64 {
	t.Helper()
	var id int64
	err := st.InTx(context.Background(), func(tx *store.Tx) error {
		res, err := tx.Resolve([]customer.Identity{{Kind: customer.UserID, Value: userID}}, "test")
		if err != nil {
			return err
		}
		id = res.CustomerID
		if p == nil {
			return nil
		}
		if err := tx.CheckPatch(p); err != nil {
			return err
		}
		return tx.ApplyPatch(id, p)
	})
	if err != nil {
		t.Fatalf("customer %s: %v", userID, err)
	}
	return id
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sp(s string) *string { return &s }

var customerLinkRe = regexp.MustCompile(`href="/customers/(\d+)"`)

// customerIDs lists the customers a list page links to, in order.
func customerIDs(body string) []string {
	var out []string
	for _, m := range customerLinkRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

var nextLinkRe = regexp.MustCompile(`href="(/customers\?[^"]*after=[^"]*)" rel="next"`)

func TestConsoleCustomersListSearchAndPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		u := consoleSignIn(t, st, "chen", staff.Operator)
		e.get(u, "/customers").want(t, http.StatusOK, "还没有客户")

		sales := consoleSignIn(t, st, "li", staff.Sales)
		for i := range 60 {
			p := &customer.Patch{Name: sp(fmt.Sprintf("客户%02d", i)), Phone: sp(fmt.Sprintf("1390000%04d", i)), Source: sp([]string{"渠道活码", "小程序"}[i%2])}
			if i < 5 {
				p.Owner = sp("li")
			}
			consoleCustomer(t, st, fmt.Sprint("u", i), p)
		}
		consoleCustomer(t, st, "wang", &customer.Patch{Name: sp("王芳"), Phone: sp("13800138000"), Source: sp("直播")})

		first := e.get(u, "/customers")
		first.want(t, http.StatusOK, "共 61 位客户", "王芳", "13800138000", "直播", ">Li<")
		ids := customerIDs(first.Body)
		if len(ids) != customerListLimit {
			t.Fatalf("first page lists %d customers, want %d", len(ids), customerListLimit)
		}
		m := nextLinkRe.FindStringSubmatch(first.Body)
		if m == nil {
			t.Fatal("first page has no next link")
		}
		second := e.get(u, strings.ReplaceAll(m[1], "&amp;", "&"))
		second.want(t, http.StatusOK, "第一页")
		more := customerIDs(second.Body)
		if len(more) != 11 || nextLinkRe.MatchString(second.Body) {
			t.Fatalf("second page lists %d customers (next link %v), want the 11 left and no next", len(more), nextLinkRe.MatchString(second.Body))
		}
		seen := map[string]bool{}
		for _, id := range append(ids, more...) {
			if seen[id] {
				t.Fatalf("customer %s listed twice across pages", id)
			}
			seen[id] = true
		}
		if a, b := atoi(t, ids[0]), atoi(t, more[0]); a <= b {
			t.Fatalf("default order is not newest first: page 1 starts at %s, page 2 at %s", ids[0], more[0])
		}

		for _, c := range []struct {
			query string
			n     int
			has   string
		}{
			{"q=%E7%8E%8B", 1, "王芳"},               // name contains 王
			{"q=13900000007", 1, "客户07"},           // exact phone
			{"q=u12", 1, "客户12"},                   // any identity
			{"source=%E7%9B%B4%E6%92%AD", 1, "王芳"}, // source 直播
			{"source=%E5%B0%8F%E7%A8%8B%E5%BA%8F", 30, "小程序"},
			{fmt.Sprintf("owner=%d", sales.Staff.ID), 5, "客户04"},
			{"owner=none", 56, "王芳"},
			{"q=nobody-at-all", 0, "没有符合条件的客户"},
		} {
			r := e.get(u, "/customers?"+c.query)
			r.want(t, http.StatusOK, c.has)
			if got := len(customerIDs(r.Body)); got != min(c.n, customerListLimit) {
				t.Errorf("%s: %d customers listed, want %d", c.query, got, min(c.n, customerListLimit))
			}
		}
		// Sorting by name, and a broken cursor falls back to the first page with a note.
		if ids := customerIDs(e.get(u, "/customers?sort=name").Body); len(ids) == 0 {
			t.Fatal("sort=name listed nobody")
		}
		e.get(u, "/customers?after=garbage").want(t, http.StatusOK, "分页链接已失效")
	})
}

func TestConsoleCustomerProfile(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newConsoleEnv(t, st)
		u := consoleSignIn(t, st, "chen", staff.Operator)
		consoleSignIn(t, st, "li", staff.Sales)
		id := consoleCustomer(t, st, "u-1", &customer.Patch{Name: sp("张伟"), Phone: sp("13800000001"), Email: sp("zw@example.com"), Gender: sp("男"),
			Source: sp("渠道活码"), Owner: sp("li"), Attrs: map[string]any{"会员等级": "高级", "年收入": 120000.0, "爱好": []any{"跑步", "瑜伽"}, "vip": true},
			OptOut: map[string]bool{"sms": true}})
		anon := consoleCustomer(t, st, "u-0", nil)
		base := time.Now().Add(-time.Hour)
		err := st.InTx(ctx, func(tx *store.Tx) error {
			var evts []*event.Event
			for i := range timelineLimit + 5 {
				evts = append(evts, &event.Event{MessageID: fmt.Sprint("m", i), CustomerID: id, Type: "track", Name: fmt.Sprintf("事件%02d", i),
					Properties: map[string]any{"sku": "A-1"}, Timestamp: base.Add(time.Duration(i) * time.Minute)})
			}
			if _, err := tx.InsertEvents(evts); err != nil {
				return err
			}
			if _, err := tx.UpsertOrder(&event.Order{OrderID: "SO-1", CustomerID: id, AmountMinor: 123456, Currency: "CNY", PaidAt: base, Products: []event.Product{{Name: "精华液"}}}); err != nil {
				return err
			}
			if err := tx.RefundOrder(event.Refund{OrderID: "SO-1", AmountMinor: 1000}); err != nil {
				return err
			}
			return tx.Merge(anon, id, "identify")
		})
		if err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprint("/customers/", id)
		r := e.get(u, path)
		r.want(t, http.StatusOK,
			"张伟", "13800000001", "zw@example.com", "男", "渠道活码", "Li",
			"用户 ID", "u-1", // identities (u-0 came with the merge)
			"会员等级", "高级", "文本", "年收入", "120000", "数字", "跑步、瑜伽", "列表", "vip", "是否",
			"短信",                                                         // opt-out
			"SO-1", "¥1,234.56", "已退 ¥10.00", "部分退款", "精华液", "¥1,224.56", // order and net spend
			fmt.Sprintf("客户 #%d", anon), // merge
			"事件34", "sku=A-1", "更早的行为",
			"/static/segments.css") // the styles of the tag chips and the add-tag form
		r.lacks(t, "事件04") // the oldest five wait on the next page
		older := regexp.MustCompile(`href="(/customers/\d+\?before=[^"]+)"`).FindStringSubmatch(r.Body)
		if older == nil {
			t.Fatal("no link to older events")
		}
		target, _, _ := strings.Cut(strings.ReplaceAll(older[1], "&amp;", "&"), "#") // browsers keep the fragment
		o := e.get(u, target)
		o.want(t, http.StatusOK, "事件04", "事件00", "回到最新")
		o.lacks(t, "事件05", "更早的行为")

		// A merged-away customer leads to the survivor; an unknown one is a 404 page.
		if r := e.get(u, fmt.Sprint("/customers/", anon)); r.StatusCode != http.StatusFound || r.Header.Get("Location") != path {
			t.Fatalf("merged customer: %d to %q, want 302 to %s", r.StatusCode, r.Header.Get("Location"), path)
		}
		e.get(u, "/customers/999999").want(t, http.StatusNotFound, "找不到页面")
		e.get(u, "/customers/abc").want(t, http.StatusNotFound)
	})
}

func TestConsoleSalesSeesOnlyOwnCustomers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		li := consoleSignIn(t, st, "li", staff.Sales)
		han := consoleSignIn(t, st, "han", staff.Sales)
		mine := consoleCustomer(t, st, "mine", &customer.Patch{Name: sp("我的客户"), Owner: sp("li")})
		theirs := consoleCustomer(t, st, "theirs", &customer.Patch{Name: sp("别人的客户"), Owner: sp("han")})
		nobodys := consoleCustomer(t, st, "nobody", &customer.Patch{Name: sp("公海客户")})
		merged := consoleCustomer(t, st, "merged", nil)
		if err := st.InTx(context.Background(), func(tx *store.Tx) error { return tx.Merge(merged, theirs, "test") }); err != nil {
			t.Fatal(err)
		}

		list := e.get(li, "/customers")
		list.want(t, http.StatusOK, "我的客户", "共 1 位客户", "仅显示你名下的客户")
		list.lacks(t, "别人的客户", "公海客户", `name="owner"`)
		// Asking for another owner's customers changes nothing: the scope wins.
		e.get(li, fmt.Sprintf("/customers?owner=%d", han.Staff.ID)).lacks(t, "别人的客户")
		e.get(li, "/customers?q=theirs").lacks(t, "别人的客户")

		e.get(li, fmt.Sprint("/customers/", mine)).want(t, http.StatusOK, "我的客户")
		for _, id := range []int64{theirs, nobodys, merged} {
			e.get(li, fmt.Sprint("/customers/", id)).want(t, http.StatusNotFound)
		}
		e.get(han, fmt.Sprint("/customers/", theirs)).want(t, http.StatusOK, "别人的客户")

		home := e.get(li, "/")
		home.want(t, http.StatusOK, "以下数据只包含你名下的客户")
		if !regexp.MustCompile(`客户总数</span>\s*<span class="stat-value">1</span>`).MatchString(home.Body) {
			t.Fatalf("sales home does not count 1 customer:\n%s", excerpt(home.Body))
		}
	})
}

func TestConsoleHome(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		admin := consoleSignIn(t, st, "chen", staff.Admin)
		e.get(admin, "/").want(t, http.StatusOK, "还没有客户数据", "/settings/keys", "siyu demo")

		st2 := storetest.Open(t, st.Engine())
		e2 := newConsoleEnv(t, st2)
		admin2 := consoleSignIn(t, st2, "chen", staff.Admin)
		id := consoleCustomer(t, st2, "u1", &customer.Patch{Name: sp("张伟")})
		err := st2.InTx(context.Background(), func(tx *store.Tx) error {
			if _, err := tx.InsertEvents([]*event.Event{{MessageID: "m1", CustomerID: id, Type: "track", Name: "x", Timestamp: time.Now()}}); err != nil {
				return err
			}
			_, err := tx.UpsertOrder(&event.Order{OrderID: "o1", CustomerID: id, AmountMinor: 990000, Currency: "CNY", PaidAt: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		r := e2.get(admin2, "/")
		r.want(t, http.StatusOK, "你好，Chen", "¥9,900.00", "本月 1 笔订单")
		r.lacks(t, "还没有客户数据")
		r.lacks(t, "标签、人群") // tags and segments have shipped: not "coming soon" any more
	})
}

func TestConsoleComingSoonSections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		u := consoleSignIn(t, st, "chen", staff.Content)
		content := staff.Preset(staff.Content)
		for _, sec := range sections {
			switch {
			case !sec.Soon:
			case content.Allows(routePermission("GET", sec.URL).Perm):
				e.get(u, sec.URL).want(t, http.StatusOK, "即将上线", "这个模块正在建设中")
			default: // a section outside the role's matrix is neither listed nor opened
				e.get(u, sec.URL).want(t, http.StatusForbidden)
				e.get(u, "/").lacks(t, `href="`+sec.URL+`"`)
			}
		}
		// A content operator does not see the settings entry.
		e.get(u, "/").lacks(t, `href="/settings"`)
	})
}
