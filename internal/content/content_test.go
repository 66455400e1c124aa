package content_test

import (
	"context"
	"errors"
	"testing"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func newStaff(t *testing.T, s *store.Store, login string) int64 {
	t.Helper()
	m := &staff.Staff{Login: login, Name: login, Role: staff.Content}
	if err := s.CreateStaff(context.Background(), m, "password-123456"); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *customer.FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("want a field error on %s, got %v", field, err)
	}
}

func wantTransition(t *testing.T, err error) {
	t.Helper()
	var te *content.TransitionError
	if !errors.As(err, &te) {
		t.Fatalf("want a transition error, got %v", err)
	}
}

func TestWorkflow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		svc := content.NewService(s)
		author, reviewer := newStaff(t, s, "writer"), newStaff(t, s, "editor")

		it := &content.Item{Kind: store.ContentText, Title: "新客欢迎", Body: store.ContentBody{Text: "{{or .Name \"朋友\"}}您好，我是{{.Owner}}"},
			Tags: []store.ContentTag{{Kind: content.TagLifecycle, Value: "新客未购"}, {Kind: content.TagAIPL, Value: "兴趣"}}}
		c, err := svc.Create(ctx, it, author)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != store.ContentDraft || c.Version != 1 || c.PublishedVersion != 0 || len(c.Tags) != 2 {
			t.Fatalf("created %+v", c)
		}
		// Illegal: approve or publish a draft.
		_, err = svc.Move(ctx, c.ID, "approve", reviewer, "")
		wantTransition(t, err)
		_, err = svc.Move(ctx, c.ID, "publish", reviewer, "")
		wantTransition(t, err)
		if _, err := svc.Move(ctx, c.ID, "submit", author, "请审核"); err != nil {
			t.Fatal(err)
		}
		// In review: no edits, no self-review; a reject needs a reason.
		_, err = svc.Update(ctx, c.ID, it, author)
		wantTransition(t, err)
		_, err = svc.Move(ctx, c.ID, "approve", author, "")
		wantField(t, err, "reviewer")
		_, err = svc.Move(ctx, c.ID, "reject", reviewer, " ")
		wantField(t, err, "comment")
		if _, err := svc.Move(ctx, c.ID, "reject", reviewer, "语气太生硬"); err != nil {
			t.Fatal(err)
		}
		it.Body.Text = "{{or .Name \"朋友\"}}您好，我是您的专属顾问{{.Owner}}"
		if _, err := svc.Update(ctx, c.ID, it, author); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			action string
			by     int64
		}{{"submit", author}, {"approve", reviewer}, {"publish", reviewer}} {
			if _, err := svc.Move(ctx, c.ID, step.action, step.by, ""); err != nil {
				t.Fatalf("%s: %v", step.action, err)
			}
		}
		pub, err := s.PublishedContent(ctx, c.ID)
		if err != nil || pub.Version != 1 || pub.Body.Text != it.Body.Text {
			t.Fatalf("published %+v %v", pub, err)
		}

		// Editing the published item makes version 2 a draft; version 1 stays in use.
		it.Body.Text = "第二版：{{.Name}}"
		c2, err := svc.Update(ctx, c.ID, it, author)
		if err != nil {
			t.Fatal(err)
		}
		if c2.Status != store.ContentDraft || c2.Version != 2 || c2.PublishedVersion != 1 {
			t.Fatalf("edited %+v", c2)
		}
		if pub, _ := s.PublishedContent(ctx, c.ID); pub.Version != 1 {
			t.Fatalf("in use: version %d", pub.Version)
		}
		vs, _ := s.ContentVersions(ctx, c.ID)
		if len(vs) != 2 {
			t.Fatalf("versions %d", len(vs))
		}
		// The author of version 2 may not approve it even though another wrote version 1.
		if _, err := svc.Move(ctx, c.ID, "submit", author, ""); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Move(ctx, c.ID, "approve", author, "")
		wantField(t, err, "reviewer")
		if _, err := svc.Move(ctx, c.ID, "approve", reviewer, "ok"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Move(ctx, c.ID, "publish", reviewer, ""); err != nil {
			t.Fatal(err)
		}
		if pub, _ := s.PublishedContent(ctx, c.ID); pub.Version != 2 {
			t.Fatalf("in use after republish: version %d", pub.Version)
		}
		if _, err := svc.Move(ctx, c.ID, "archive", reviewer, "下线"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PublishedContent(ctx, c.ID); !errors.Is(err, store.ErrNotPublished) {
			t.Fatalf("archived still in use: %v", err)
		}
		_, err = svc.Move(ctx, c.ID, "archive", reviewer, "")
		wantTransition(t, err)
		_, err = svc.Update(ctx, c.ID, it, author)
		wantTransition(t, err)

		log, err := s.ContentComments(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range log {
			actions = append(actions, e.Action)
		}
		want := []string{"create", "submit", "reject", "edit", "submit", "approve", "publish", "edit", "submit", "approve", "publish", "archive"}
		if len(actions) != len(want) {
			t.Fatalf("log %v", actions)
		}
		for i := range want {
			if actions[i] != want[i] {
				t.Fatalf("log %v", actions)
			}
		}
		if log[2].Body != "语气太生硬" || log[2].StaffID != reviewer {
			t.Fatalf("reject entry %+v", log[2])
		}
	})
}

func TestValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		svc := content.NewService(s)
		by := newStaff(t, s, "writer")
		cases := []struct {
			it    content.Item
			field string
		}{
			{content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "您好 {{.Nmae}}"}}, "body.text"},
			{content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "{{.Attrs.nope}}"}}, "body.text"},
			{content.Item{Kind: store.ContentText, Title: "", Body: store.ContentBody{Text: "hi"}}, "title"},
			{content.Item{Kind: "video", Title: "x"}, "kind"},
			{content.Item{Kind: store.ContentLink, Title: "x", Body: store.ContentBody{URL: "javascript:alert(1)"}}, "body.url"},
			{content.Item{Kind: store.ContentImage, Title: "x"}, "body.image_id"},
			{content.Item{Kind: store.ContentImage, Title: "x", Body: store.ContentBody{ImageID: 999}}, "body.image_id"},
			{content.Item{Kind: store.ContentMiniProgram, Title: "x", Body: store.ContentBody{AppID: "abc", Page: "pages/a", Cover: "https://x.cn/a.png"}}, "body.appid"},
			{content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "hi", Attachments: []int64{42}}}, "body.attachments[0]"},
			{content.Item{Kind: store.ContentText, Title: "x", FolderID: 7, Body: store.ContentBody{Text: "hi"}}, "folder_id"},
			{content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "hi"}, Tags: []store.ContentTag{{Kind: content.TagAIPL, Value: "忠实"}}}, "tags[0].value"},
		}
		for _, c := range cases {
			_, err := svc.Create(ctx, &c.it, by)
			wantField(t, err, c.field)
		}
		page, err := s.ListContents(ctx, store.ContentFilter{Limit: 10})
		if err != nil || page.Total != 0 {
			t.Fatalf("bad input wrote %d items (%v)", page.Total, err)
		}
		// A draft link cannot be attached; once published it can.
		link, err := svc.Create(ctx, &content.Item{Kind: store.ContentLink, Title: "会员权益", Body: store.ContentBody{URL: "https://shop.example.cn/vip", Description: "新人礼"}}, by)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Create(ctx, &content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "hi", Attachments: []int64{link.ID}}}, by)
		wantField(t, err, "body.attachments[0]")
	})
}

func TestListFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		svc := content.NewService(s)
		by := newStaff(t, s, "writer")
		f := &store.ContentFolder{Name: "新客"}
		if err := s.SaveContentFolder(ctx, f); err != nil {
			t.Fatal(err)
		}
		sub := &store.ContentFolder{Name: "首单", ParentID: f.ID}
		if err := s.SaveContentFolder(ctx, sub); err != nil {
			t.Fatal(err)
		}
		f.ParentID = sub.ID // a cycle
		wantField(t, s.SaveContentFolder(ctx, f), "parent_id")
		wantField(t, s.SaveContentFolder(ctx, &store.ContentFolder{Name: "首单", ParentID: f.ID}), "name")
		mk := func(title, text string, folder int64, tags ...store.ContentTag) int64 {
			c, err := svc.Create(ctx, &content.Item{Kind: store.ContentText, Title: title, FolderID: folder, Body: store.ContentBody{Text: text}, Tags: tags}, by)
			if err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		a := mk("欢迎语", "欢迎加入 50% 优惠", f.ID, store.ContentTag{Kind: content.TagLifecycle, Value: "新客未购"})
		mk("复购提醒", "该补货啦", sub.ID, store.ContentTag{Kind: content.TagTopic, Value: "复购"})
		mk("生日祝福", "生日快乐", 0)
		count := func(f store.ContentFilter) int64 {
			t.Helper()
			f.Limit = 10
			p, err := s.ListContents(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			return p.Total
		}
		if n := count(store.ContentFilter{}); n != 3 {
			t.Fatalf("all %d", n)
		}
		if n := count(store.ContentFilter{FolderID: f.ID}); n != 1 {
			t.Fatalf("folder %d", n)
		}
		if n := count(store.ContentFilter{FolderID: -1}); n != 1 {
			t.Fatalf("no folder %d", n)
		}
		if n := count(store.ContentFilter{TagKind: content.TagLifecycle, TagValue: "新客未购"}); n != 1 {
			t.Fatalf("stage %d", n)
		}
		if n := count(store.ContentFilter{Query: "50%"}); n != 1 {
			t.Fatalf("search %d", n)
		}
		if n := count(store.ContentFilter{Query: "%"}); n != 1 {
			t.Fatalf("search for a wildcard %d", n)
		}
		if n := count(store.ContentFilter{Published: true}); n != 0 {
			t.Fatalf("published %d", n)
		}
		if n := count(store.ContentFilter{Status: store.ContentDraft, Kind: store.ContentText}); n != 3 {
			t.Fatalf("drafts %d", n)
		}
		wantField(t, s.DeleteContentFolder(ctx, f.ID), "id")
		_ = a
	})
}
