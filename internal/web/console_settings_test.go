package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestConsoleSettingsAreAdminOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newConsoleEnv(t, st)
		admin := consoleSignIn(t, st, "admin", staff.Admin)
		for _, role := range []staff.Role{staff.Operator, staff.Sales, staff.Content} {
			u := consoleSignIn(t, st, string(role), role)
			for _, path := range []string{"/settings", "/settings/keys", "/settings/staff", fmt.Sprint("/settings/staff/", admin.Staff.ID)} {
				e.get(u, path).want(t, http.StatusForbidden, "没有权限")
			}
			e.post(u, "/settings/keys", url.Values{"kind": {"write"}, "name": {"x"}}).want(t, http.StatusForbidden)
			e.post(u, "/settings/staff", url.Values{"login": {"x" + string(role)}, "name": {"X"}, "role": {"admin"}, "password": {"0123456789"}}).want(t, http.StatusForbidden)
			e.post(u, fmt.Sprintf("/settings/staff/%d/password", admin.Staff.ID), url.Values{"password": {"0123456789"}, "password2": {"0123456789"}}).want(t, http.StatusForbidden)
		}
		keys, _ := st.ListKeys(context.Background())
		all, _ := st.ListStaff(context.Background())
		if len(keys) != 0 || len(all) != 4 {
			t.Fatalf("refused requests wrote %d keys and %d staff; want 0 and 4", len(keys), len(all))
		}
		e.get(admin, "/settings/keys").want(t, http.StatusOK, "还没有密钥")
	})
}

var secretRe = regexp.MustCompile(`value="((?:wk|sk)_[A-Za-z0-9_-]+)"`)

func TestConsoleKeysCreateShowOnceAndRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newConsoleEnv(t, st)
		admin := consoleSignIn(t, st, "admin", staff.Admin)
		r := e.post(admin, "/settings/keys", url.Values{"kind": {"write"}, "name": {"商城后端"}})
		r.want(t, http.StatusOK, "只显示这一次", "商城后端")
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("the page with a secret has Cache-Control %q, want no-store", cc)
		}
		m := secretRe.FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatal("no secret on the page")
		}
		secret := m[1]
		k, err := st.KeyBySecret(ctx, staff.WriteKey, secret)
		if err != nil || k.Name != "商城后端" || k.CreatedBy != admin.Staff.ID {
			t.Fatalf("the secret shown is not a working write key: %+v, %v", k, err)
		}
		list := e.get(admin, "/settings/keys")
		list.want(t, http.StatusOK, "商城后端", k.Prefix)
		list.lacks(t, secret)

		api := e.post(admin, "/settings/keys", url.Values{"kind": {"api"}, "name": {"BI"}, "role": {"sales"}})
		api.want(t, http.StatusOK, "Authorization: Bearer")
		ak, err := st.KeyBySecret(ctx, staff.APIKey, secretRe.FindStringSubmatch(api.Body)[1])
		if err != nil || ak.Role != staff.Sales {
			t.Fatalf("api key: %+v, %v; want role sales", ak, err)
		}
		e.post(admin, "/settings/keys", url.Values{"kind": {"root"}}).want(t, http.StatusUnprocessableEntity, "请选择密钥类型")

		// Revoking asks first (without JavaScript, a confirmation page) and only then revokes.
		path := fmt.Sprintf("/settings/keys/%d/revoke", k.ID)
		e.post(admin, path, nil).want(t, http.StatusOK, "确定撤销密钥", `name="confirm" value="yes"`)
		if _, err := st.KeyBySecret(ctx, staff.WriteKey, secret); err != nil {
			t.Fatalf("key revoked before confirmation: %v", err)
		}
		done := e.post(admin, path, url.Values{"confirm": {"yes"}})
		if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != "/settings/keys" {
			t.Fatalf("confirmed revoke: %d to %q", done.StatusCode, done.Header.Get("Location"))
		}
		if _, err := st.KeyBySecret(ctx, staff.WriteKey, secret); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoked key still works: %v", err)
		}
		e.get(admin, "/settings/keys", done.cookie(flashCookie)).want(t, http.StatusOK, "已撤销，立即失效", "已撤销")
		e.post(admin, "/settings/keys/999999/revoke", url.Values{"confirm": {"yes"}}).want(t, http.StatusNotFound)
	})
}

func TestConsoleStaffManagement(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		e := newConsoleEnv(t, st)
		admin := consoleSignIn(t, st, "admin", staff.Admin)
		form := url.Values{"login": {"li"}, "name": {"李雷"}, "role": {"sales"}, "department": {"社群销售"}, "password": {"first password"}}
		r := e.post(admin, "/settings/staff", form)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("create staff: %d\n%s", r.StatusCode, excerpt(r.Body))
		}
		e.get(admin, "/settings/staff", r.cookie(flashCookie)).want(t, http.StatusOK, "已添加员工 李雷", "社群销售", "销售")
		li, err := st.CheckLogin(ctx, "li", "first password")
		if err != nil || li.Role != staff.Sales {
			t.Fatalf("new staff cannot sign in: %+v, %v", li, err)
		}
		e.post(admin, "/settings/staff", form).want(t, http.StatusUnprocessableEntity, "这个登录账号已被使用", `value="李雷"`)
		short := url.Values{"login": {"han"}, "name": {"韩梅梅"}, "role": {"sales"}, "password": {"short"}}
		e.post(admin, "/settings/staff", short).want(t, http.StatusUnprocessableEntity, "密码至少 10 个字符")

		// Reset a password: the old one stops working, and so do their sessions.
		token, _, _ := st.CreateSession(ctx, li.ID, SessionTTL)
		pw := fmt.Sprintf("/settings/staff/%d/password", li.ID)
		e.post(admin, pw, url.Values{"password": {"second password"}, "password2": {"other password"}}).want(t, http.StatusUnprocessableEntity, "两次输入的密码不一致")
		if r := e.post(admin, pw, url.Values{"password": {"second password"}, "password2": {"second password"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("reset password: %d", r.StatusCode)
		}
		if _, err := st.CheckLogin(ctx, "li", "second password"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		if _, _, err := st.Session(ctx, token); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived a password reset: %v", err)
		}

		// Change role and disable; an admin cannot lock themself out.
		edit := fmt.Sprintf("/settings/staff/%d", li.ID)
		e.get(admin, edit).want(t, http.StatusOK, "李雷", "重置密码")
		if r := e.post(admin, edit, url.Values{"name": {"李雷"}, "role": {"operator"}, "disabled": {"on"}}); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("update staff: %d\n%s", r.StatusCode, excerpt(r.Body))
		}
		if m, _ := st.StaffByID(ctx, li.ID); m.Role != staff.Operator || !m.Disabled {
			t.Fatalf("after update: %+v", m)
		}
		self := fmt.Sprintf("/settings/staff/%d", admin.Staff.ID)
		e.post(admin, self, url.Values{"name": {"Admin"}, "role": {"sales"}}).want(t, http.StatusUnprocessableEntity, "不能停用自己")
		if m, _ := st.StaffByID(ctx, admin.Staff.ID); m.Role != staff.Admin {
			t.Fatalf("admin demoted themself: %+v", m)
		}
		e.get(admin, "/settings/staff/999999").want(t, http.StatusNotFound)
	})
}
