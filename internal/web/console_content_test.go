package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestConsoleContentLibrary(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		writer := consoleSignIn(t, st, "writer", staff.Content)
		editor := consoleSignIn(t, st, "editor", staff.Content)
		sales := consoleSignIn(t, st, "sales", staff.Sales)

		e.get(writer, "/content").want(t, http.StatusOK, "内容库", "审核队列")
		e.get(writer, "/content/new?kind=link").want(t, http.StatusOK, `name="url"`)
		// A bad template is shown back naming the field, nothing saved.
		e.post(writer, "/content", url.Values{"kind": {"text"}, "title": {"欢迎"}, "text": {"您好 {{.Nmae}}"}}).want(t, http.StatusUnprocessableEntity, "body.text")
		r := e.post(writer, "/content", url.Values{"kind": {"text"}, "title": {"欢迎<b>"}, "text": {"{{.Name}}您好"}, "lifecycle": {"新客未购"}, "topics": {"复购, 节日"}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("create: %d %s", r.StatusCode, excerpt(r.Body))
		}
		item := r.Header.Get("Location")
		e.get(writer, item).want(t, http.StatusOK, "欢迎&lt;b&gt;", "提交审核", "新客未购")
		e.get(sales, item).want(t, http.StatusNotFound)
		e.post(writer, item+"/move", url.Values{"action": {"submit"}}).want(t, http.StatusSeeOther)
		// The author sees no approve button and cannot approve by hand either.
		e.get(writer, item).lacks(t, `value="approve"`)
		e.post(writer, item+"/move", url.Values{"action": {"approve"}}).want(t, http.StatusUnprocessableEntity, "reviewer")
		e.get(editor, "/content?status=in_review").want(t, http.StatusOK, "欢迎&lt;b&gt;")
		e.post(editor, item+"/move", url.Values{"action": {"approve"}, "comment": {"好"}}).want(t, http.StatusSeeOther)
		e.post(editor, item+"/move", url.Values{"action": {"publish"}}).want(t, http.StatusSeeOther)
		e.post(editor, item+"/move", url.Values{"action": {"publish"}}).want(t, http.StatusUnprocessableEntity)
		e.get(sales, item).want(t, http.StatusOK, "{{.Name}}您好")
		e.post(editor, item+"/comment", url.Values{"body": {"<script>alert(1)</script>"}}).want(t, http.StatusSeeOther)
		r = e.get(writer, item)
		r.want(t, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;", "审核通过")
		r.lacks(t, "<script>alert(1)")
		// A link, published, is offered as an attachment of a 话术 and kept when ticked.
		r = e.post(writer, "/content", url.Values{"kind": {"link"}, "title": {"会员权益"}, "url": {"https://shop.example.cn/vip"}})
		link := r.Header.Get("Location")
		e.post(writer, link+"/move", url.Values{"action": {"submit"}}).want(t, http.StatusSeeOther)
		e.post(editor, link+"/move", url.Values{"action": {"approve"}}).want(t, http.StatusSeeOther)
		e.post(editor, link+"/move", url.Values{"action": {"publish"}}).want(t, http.StatusSeeOther)
		linkID := strings.TrimPrefix(link, "/content/")
		e.get(writer, "/content/new").want(t, http.StatusOK, "会员权益")
		r = e.post(writer, "/content", url.Values{"kind": {"text"}, "title": {"带链接"}, "text": {"看看"}, "attachment": {linkID}})
		e.get(writer, r.Header.Get("Location")).want(t, http.StatusOK, `value="`+linkID+`" checked`)
		e.post(writer, "/content/folders", url.Values{"name": {"新客"}}).want(t, http.StatusSeeOther)
		e.get(writer, "/content").want(t, http.StatusOK, "新客")
		if r := e.post(sales, "/content", url.Values{"kind": {"text"}, "title": {"x"}, "text": {"hi"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("sales wrote content: %d", r.StatusCode)
		}
	})
}

func TestConsoleChannelCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		op := consoleSignIn(t, st, "olivia", staff.Operator)
		sales := consoleSignIn(t, st, "sam", staff.Sales)
		e.get(op, "/channel-codes").want(t, http.StatusOK, "渠道活码")
		e.get(op, "/channel-codes/new").want(t, http.StatusOK, "Sam")
		e.get(sales, "/channel-codes").want(t, http.StatusForbidden)
		e.post(op, "/channel-codes", url.Values{"name": {"门店"}, "mode": {"list"}}).want(t, http.StatusUnprocessableEntity, "receivers")
		r := e.post(op, "/channel-codes", url.Values{"name": {"门店海报"}, "state": {"store-1"}, "mode": {"list"},
			"receiver": {fmt.Sprint(sales.Staff.ID)}, fmt.Sprintf("cap_%d", sales.Staff.ID): {"30"}, "welcome_text": {"{{.Name}}您好"}})
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("create: %d %s", r.StatusCode, excerpt(r.Body))
		}
		loc := r.Header.Get("Location")
		page := e.get(op, loc)
		page.want(t, http.StatusOK, "store-1", `value="30"`)
		if !strings.Contains(page.Body, "门店海报") {
			t.Fatal("name missing")
		}
		e.get(op, "/channel-codes").want(t, http.StatusOK, "store-1")
		e.post(op, loc+"/delete", nil).want(t, http.StatusSeeOther)
		e.get(op, loc).want(t, http.StatusNotFound)
	})
}

func TestConsolePersonas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		writer := consoleSignIn(t, st, "writer", staff.Content)
		sales := consoleSignIn(t, st, "sales", staff.Sales)
		e.get(writer, "/content/personas").want(t, http.StatusOK, "员工人设")
		e.post(writer, "/content/personas", url.Values{"name": {""}}).want(t, http.StatusUnprocessableEntity, "name")
		e.post(writer, "/content/personas", url.Values{"name": {"健康管理专家"}, "intro": {"十年营养师"}, "staff": {fmt.Sprint(sales.Staff.ID)}}).want(t, http.StatusSeeOther)
		e.get(sales, "/content/personas").want(t, http.StatusOK, "健康管理专家", "Sales")
		if r := e.post(sales, "/content/personas", url.Values{"name": {"x"}}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("sales edited personas: %d", r.StatusCode)
		}
	})
}
