package sop_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// publish takes an item through review: written by author, approved and published by editor.
func publish(t *testing.T, lib *content.Service, id, editor int64) {
	t.Helper()
	for _, a := range []string{"submit", "approve", "publish"} {
		if _, err := lib.Move(ctx, id, a, editor, ""); err != nil {
			t.Fatalf("%s content %d: %v", a, id, err)
		}
	}
}

func TestStepsUsePublishedContent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		lib := content.NewService(st)
		author := &staff.Staff{Login: "writer", Name: "文案", Role: staff.Content}
		editor := &staff.Staff{Login: "editor", Name: "主编", Role: staff.Content}
		for _, m := range []*staff.Staff{author, editor} {
			if err := st.CreateStaff(ctx, m, "correct horse battery"); err != nil {
				t.Fatal(err)
			}
		}
		persona := &store.Persona{Name: "健康管理专家", Intro: "十年营养师", StaffIDs: []int64{f.sales.ID}}
		if err := st.SavePersona(ctx, persona); err != nil {
			t.Fatal(err)
		}
		link, err := lib.Create(ctx, &content.Item{Kind: store.ContentLink, Title: "新人礼", Body: store.ContentBody{URL: "https://shop.example.cn/gift", Description: "首单立减"}}, author.ID)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, lib, link.ID, editor.ID)
		text, err := lib.Create(ctx, &content.Item{Kind: store.ContentText, Title: "欢迎",
			Body: store.ContentBody{Text: "{{.Name}}您好，我是{{.Persona}}{{.Owner}}", Attachments: []int64{link.ID}}}, author.ID)
		if err != nil {
			t.Fatal(err)
		}

		spec := func(contentID int64) string {
			return fmt.Sprintf(`{"name": "内容测试", "trigger": {"kind": "manual"}, "steps": [
				{"channel": "wecom_private", "content": "先打个招呼", "executor": {"kind": "owner"}},
				{"channel": "wecom_private", "content_id": %d, "executor": {"kind": "owner"}}]}`, contentID)
		}
		sp, _ := sop.ParseSpec([]byte(spec(text.ID)))
		_, err = f.svc.Create(ctx, sp, 0)
		var fe *customer.FieldError
		if !errors.As(err, &fe) || fe.Field != "steps[1].content_id" {
			t.Fatalf("a draft was picked: %v", err)
		}
		sp, _ = sop.ParseSpec([]byte(spec(987654)))
		if _, err = f.svc.Create(ctx, sp, 0); !errors.As(err, &fe) || fe.Field != "steps[1].content_id" {
			t.Fatalf("a missing item was picked: %v", err)
		}

		publish(t, lib, text.ID, editor.ID)
		id := f.create(spec(text.ID))
		// A new version in draft leaves the published one in use.
		if _, err := lib.Update(ctx, text.ID, &content.Item{Title: "欢迎 v2", Body: store.ContentBody{Text: "第二版 {{.Name}}"}}, author.ID); err != nil {
			t.Fatal(err)
		}
		cust := f.customer("u-content", "王芳")
		if _, err := f.svc.Start(ctx, id, []int64{cust}, "t"); err != nil {
			t.Fatal(err)
		}
		f.runUntil(f.now.Add(time.Minute))
		ts := f.touches(id)
		if len(ts) != 2 || ts[1].State != store.TouchDue {
			t.Fatalf("touches %s", states(ts))
		}
		if want := "王芳您好，我是健康管理专家李销售"; ts[1].Content != want {
			t.Fatalf("rendered %q, want %q", ts[1].Content, want)
		}
		atts, err := st.TouchAttachments(ctx, ts[1].ID)
		if err != nil || len(atts) != 1 || atts[0].ContentID != link.ID || atts[0].URL != "https://shop.example.cn/gift" {
			t.Fatalf("attachments %+v %v", atts, err)
		}
		if atts, _ := st.TouchAttachments(ctx, ts[0].ID); len(atts) != 0 {
			t.Fatalf("a step without content carries %+v", atts)
		}
		if m, err := st.TouchesAttachments(ctx, []int64{ts[0].ID, ts[1].ID}); err != nil || len(m) != 1 || len(m[ts[1].ID]) != 1 {
			t.Fatalf("inbox attachments %+v %v", m, err)
		}

		// Usage and conversion: the task done, an order two days later.
		if _, err := f.svc.FinishTask(ctx, ts[1].ID, 0, false, ""); err != nil {
			t.Fatal(err)
		}
		u, err := st.ContentUsage(ctx, text.ID, 7)
		if err != nil {
			t.Fatal(err)
		}
		if u.SOPs != 1 || u.Touches[store.TouchDone] != 1 || u.Reached != 1 || u.Converted != 0 {
			t.Fatalf("usage before the order %+v", u)
		}
		f.now = f.now.Add(48 * time.Hour)
		err = st.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "SO-1", CustomerID: cust, AmountMinor: 29900, Currency: "CNY", PaidAt: f.now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		u, _ = st.ContentUsage(ctx, text.ID, 7)
		if u.Converted != 1 || u.GMVMinor != 29900 {
			t.Fatalf("usage after the order %+v", u)
		}
		if u, _ := st.ContentUsage(ctx, text.ID, 1); u.Converted != 0 {
			t.Fatalf("an order after the window converted: %+v", u)
		}

		// Archived since planning: the touch fails with the reason, nothing is sent.
		if _, err := lib.Move(ctx, text.ID, "archive", editor.ID, ""); err != nil {
			t.Fatal(err)
		}
		other := f.customer("u-content-2", "赵六")
		if _, err := f.svc.Start(ctx, id, []int64{other}, "t2"); err != nil {
			t.Fatal(err)
		}
		f.runUntil(f.now.Add(time.Minute))
		for _, tc := range f.touches(id) {
			if tc.CustomerID == other && tc.Step == 1 && (tc.State != store.TouchFailed || tc.Reason == "") {
				t.Fatalf("archived content: %s %q", tc.State, tc.Reason)
			}
		}
	})
}
