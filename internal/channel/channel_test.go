package channel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/channel"
	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
	"github.com/siyu-scrm/siyu/internal/wecom"
	"github.com/siyu-scrm/siyu/internal/wecom/wecomtest"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	// t0 is Monday 2 March 2026, 10:00 in Shanghai.
	t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, segment.Shanghai)
)

func TestPick(t *testing.T) {
	a, b, c, fb := int64(1), int64(2), int64(3), int64(9)
	rs := []channel.Receiver{{StaffID: a}, {StaffID: b, DailyCap: 2}, {StaffID: c}}
	// Round-robin is fair: nine picks with no caps in the way give three each, in order.
	got := map[int64]int{}
	today := map[int64]int{}
	last := int64(0)
	var order []int64
	for range 9 {
		id, full := channel.Pick([]channel.Receiver{{StaffID: a}, {StaffID: b}, {StaffID: c}}, today, last, fb)
		if full {
			t.Fatal("full with no caps")
		}
		got[id]++
		today[id]++
		order = append(order, id)
		last = id
	}
	if got[a] != 3 || got[b] != 3 || got[c] != 3 || !slices.Equal(order[:3], []int64{a, b, c}) {
		t.Fatalf("round-robin %v %v", got, order)
	}
	cases := []struct {
		name     string
		today    map[int64]int
		last     int64
		want     int64
		wantFull bool
	}{
		{"after a comes b", map[int64]int{}, a, b, false},
		{"b is full: skipped", map[int64]int{b: 2}, a, c, false},
		{"wraps around", map[int64]int{}, c, a, false},
		{"an unknown last starts at the top", map[int64]int{}, 42, a, false},
		{"everyone full: fallback", map[int64]int{a: 1, b: 2, c: 1}, a, fb, true},
	}
	capped := []channel.Receiver{{StaffID: a, DailyCap: 1}, {StaffID: b, DailyCap: 2}, {StaffID: c, DailyCap: 1}}
	for _, tc := range cases {
		rs := rs
		if tc.wantFull {
			rs = capped
		}
		id, full := channel.Pick(rs, tc.today, tc.last, fb)
		if id != tc.want || full != tc.wantFull {
			t.Errorf("%s: got %d full=%v, want %d full=%v", tc.name, id, full, tc.want, tc.wantFull)
		}
	}
	if id, full := channel.Pick(capped, map[int64]int{a: 1, b: 2, c: 1}, a, 0); id != 0 || !full {
		t.Fatalf("full without fallback: %d %v", id, full)
	}
}

// env is a store on a fake clock, a fake WeCom, the channel service and the WeCom worker
// that applies callbacks with it.
type env struct {
	t      *testing.T
	s      *store.Store
	now    time.Time
	api    *wecomtest.Server
	svc    *channel.Service
	worker *wecom.Worker
	staff  map[string]int64 // by WeCom userid
	n      int
}

func newEnv(t *testing.T, s *store.Store) *env {
	e := &env{t: t, s: s, now: t0, staff: map[string]int64{}}
	s.SetClock(func() time.Time { return e.now })
	e.api = wecomtest.New(t, "wwcorp", "secret")
	client, err := wecom.NewClient(e.api.Config(), s)
	if err != nil {
		t.Fatal(err)
	}
	client.Now = func() time.Time { return e.now }
	e.svc = channel.NewService(s, quiet)
	e.svc.WeCom = func(context.Context) (channel.WeCom, error) { return client, nil }
	e.worker = &wecom.Worker{Store: s, API: client, Log: quiet, Channels: e.svc}
	for _, u := range []string{"zhangsan", "lisi", "wangwu", "fallback"} {
		m := &staff.Staff{Login: u, Name: u, Role: staff.Sales}
		if err := s.CreateStaff(ctx, m, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWeComUserID(ctx, m.ID, u); err != nil {
			t.Fatal(err)
		}
		e.staff[u] = m.ID
	}
	return e
}

// add delivers an add_external_contact through state to staff member user, as WeCom's
// callback would queue it, and applies it; it returns the customer.
func (e *env) add(user, external, state, welcomeCode string) int64 {
	e.t.Helper()
	ev := wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.AddExternalContact, UserID: user, ExternalUserID: external, State: state, WelcomeCode: welcomeCode}
	e.deliver(ev)
	id, err := e.s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.WeComExternal, Value: external})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) deliver(ev wecom.Event) {
	e.t.Helper()
	e.n++
	xml := wecomtest.EventXML(ev, e.now)
	parsed, err := wecom.ParseEvent(xml)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.s.QueueWeComEvent(ctx, fmt.Sprintf("sig%d", e.n), "nonce", parsed.Key(), parsed.Kind(), string(xml)); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.worker.Drain(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) code(id int64) *channel.Code {
	e.t.Helper()
	c, err := e.svc.Get(ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestChannelCodeEndToEnd(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		g := &tag.Group{Name: "来源", Kind: tag.Source}
		if err := s.CreateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		src := &tag.Tag{GroupID: g.ID, Name: "门店海报"}
		if err := s.CreateTag(ctx, src); err != nil {
			t.Fatal(err)
		}
		persona := &store.Persona{Name: "健康管理专家", StaffIDs: []int64{e.staff["zhangsan"]}}
		if err := s.SavePersona(ctx, persona); err != nil {
			t.Fatal(err)
		}
		in := &channel.Input{Name: "春季门店海报", State: "spring-store", Channel: "门店", Campaign: "春季焕新", Spec: channel.Spec{
			Receivers:       []channel.Receiver{{StaffID: e.staff["zhangsan"], DailyCap: 2}, {StaffID: e.staff["lisi"], DailyCap: 1}},
			FallbackStaffID: e.staff["fallback"],
			Welcome:         channel.Welcome{Text: "{{or .Name \"您\"}}好，我是{{.Persona}}{{.Owner}}"},
			TagIDs:          []int64{src.ID},
		}}
		c, err := e.svc.Save(ctx, 0, in, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c.WeComConfigID == "" || c.WeComQRCode == "" || c.WeComError != "" {
			t.Fatalf("contact way not made: %+v", c.ChannelCodeRow)
		}
		if w := e.api.ContactWay(c.WeComConfigID); w == nil || w.State != "spring-store" || !slices.Equal(w.User, []string{"zhangsan"}) {
			t.Fatalf("contact way %+v", w)
		}

		e.api.Contacts["wmA"] = &wecom.ContactDetail{Contact: wecom.ExternalContact{ExternalUserID: "wmA", Name: "王芳"}}
		cust := e.add("zhangsan", "wmA", "spring-store", "WELCOME-1")
		got, _ := s.Customer(ctx, cust)
		if got.Source != "春季门店海报" || got.OwnerID != e.staff["zhangsan"] {
			t.Fatalf("customer %+v", got)
		}
		tags, _ := s.CustomerTags(ctx, cust)
		if len(tags) != 1 || tags[0].Tag.ID != src.ID {
			t.Fatalf("tags %+v", tags)
		}
		ws := e.api.Welcomes()
		if len(ws) != 1 || ws[0].WelcomeCode != "WELCOME-1" || ws[0].Text == nil || ws[0].Text.Content != "王芳好，我是健康管理专家zhangsan" {
			t.Fatalf("welcome %+v", ws)
		}
		// The turn moved on: the contact way now points at lisi.
		if w := e.api.ContactWay(c.WeComConfigID); !slices.Equal(w.User, []string{"lisi"}) {
			t.Fatalf("after one add the code points at %v", w.User)
		}

		// WeCom retries the same callback: nothing is applied twice.
		e.deliver(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.AddExternalContact, UserID: "zhangsan", ExternalUserID: "wmA", State: "spring-store", WelcomeCode: "WELCOME-1"})
		// And the channel step itself is idempotent by key (a worker re-running an event), even
		// when the add it recorded was deleted since.
		err = s.InTx(ctx, func(tx *store.Tx) error {
			other, err := tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: "u-again"}}, e.now)
			if err != nil {
				return err
			}
			add := channel.Added{Key: "k-again", State: "spring-store", CustomerID: other, StaffID: e.staff["zhangsan"], At: e.now}
			if _, err := e.svc.OnAdded(tx, add); err != nil {
				return err
			}
			if _, err := tx.MarkChannelDeleted(other, e.staff["zhangsan"], e.now); err != nil {
				return err
			}
			if fn, err := e.svc.OnAdded(tx, add); err != nil || fn != nil {
				t.Errorf("a repeated add has work to do (%v)", err)
			}
			if open, _ := tx.OpenChannelAdd(c.ID, other, e.staff["zhangsan"]); open {
				t.Error("a repeated add was recorded again")
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		adds, _ := s.ChannelAdds(ctx, c.ID, 10)
		if len(adds) != 1 || adds[0].Welcome != "sent" || len(e.api.Welcomes()) != 1 {
			t.Fatalf("adds after a retry %+v, welcomes %d", adds, len(e.api.Welcomes()))
		}
		if tags, _ := s.CustomerTags(ctx, cust); len(tags) != 1 {
			t.Fatalf("tags after a retry %+v", tags)
		}

		// Capacity: lisi takes one, zhangsan a second, then both are full → fallback.
		e.add("lisi", "wmB", "spring-store", "")
		if cur := e.code(c.ID).CurrentStaffID; cur != e.staff["zhangsan"] {
			t.Fatalf("after lisi: %d", cur)
		}
		e.add("zhangsan", "wmC", "spring-store", "")
		if cur := e.code(c.ID).CurrentStaffID; cur != e.staff["fallback"] {
			t.Fatalf("all full: %d", cur)
		}
		if w := e.api.ContactWay(c.WeComConfigID); !slices.Equal(w.User, []string{"fallback"}) {
			t.Fatalf("all full: the code points at %v", w.User)
		}
		// A new day: capacities are fresh.
		e.now = e.now.Add(24 * time.Hour)
		e.add("fallback", "wmD", "spring-store", "")
		if cur := e.code(c.ID).CurrentStaffID; cur != e.staff["zhangsan"] {
			t.Fatalf("next day: %d", cur)
		}

		// Stats: adds per day, a delete, a buyer with GMV.
		e.deliver(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.DelFollowUser, UserID: "lisi", ExternalUserID: "wmB"})
		err = s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "SO-9", CustomerID: cust, AmountMinor: 59900, Currency: "CNY", PaidAt: e.now})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.svc.Stats(ctx, c.ID, 7)
		if err != nil {
			t.Fatal(err)
		}
		if st.Adds != 4 || st.Deletes != 1 || st.Buyers != 1 || st.GMVMinor != 59900 || len(st.Days) != 2 || st.Days[0].Adds != 3 || st.Days[0].Day != "2026-03-02" {
			t.Fatalf("stats %+v", st)
		}
	})
}

var errRollback = errors.New("rollback")

func TestPersonaModeAndValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		p := &store.Persona{Name: "养生导师", StaffIDs: []int64{e.staff["lisi"], e.staff["wangwu"]}}
		if err := s.SavePersona(ctx, p); err != nil {
			t.Fatal(err)
		}
		c, err := e.svc.Save(ctx, 0, &channel.Input{Name: "养生直播", Spec: channel.Spec{Mode: channel.ByPersona, PersonaID: p.ID}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.State) == 0 || len(c.State) > 30 || c.Source != "养生直播" {
			t.Fatalf("defaults %+v", c.ChannelCodeRow)
		}
		if c.CurrentStaffID != e.staff["lisi"] {
			t.Fatalf("persona code points at %d", c.CurrentStaffID)
		}
		e.add("lisi", "wmP1", c.State, "")
		if cur := e.code(c.ID).CurrentStaffID; cur != e.staff["wangwu"] {
			t.Fatalf("persona round-robin: %d", cur)
		}
		// A code without verification: WeCom reports the half add, then the full one; one add.
		e.deliver(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.AddHalfExternalContact, UserID: "wangwu", ExternalUserID: "wmP2", State: c.State})
		e.add("wangwu", "wmP2", c.State, "")
		if adds, _ := s.ChannelAdds(ctx, c.ID, 10); len(adds) != 2 {
			t.Fatalf("half then full add counted %d times", len(adds)-1)
		}

		lib := content.NewService(s)
		draft, err := lib.Create(ctx, &content.Item{Kind: store.ContentText, Title: "x", Body: store.ContentBody{Text: "hi"}}, e.staff["zhangsan"])
		if err != nil {
			t.Fatal(err)
		}
		bad := []struct {
			in    channel.Input
			field string
		}{
			{channel.Input{Name: "", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}}}, "name"},
			{channel.Input{Name: "x", State: "has space", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}}}, "state"},
			{channel.Input{Name: "x", State: "0123456789012345678901234567890", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}}}, "state"},
			{channel.Input{Name: "x", State: c.State, Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}}}, "state"},
			{channel.Input{Name: "x"}, "receivers"},
			{channel.Input{Name: "x", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: 999}}}}, "receivers[0].staff_id"},
			{channel.Input{Name: "x", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"], DailyCap: -1}}}}, "receivers[0].daily_cap"},
			{channel.Input{Name: "x", Spec: channel.Spec{Mode: channel.ByPersona}}, "persona_id"},
			{channel.Input{Name: "x", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}, Welcome: channel.Welcome{Text: "{{.Nmae}}"}}}, "welcome.text"},
			{channel.Input{Name: "x", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}, Welcome: channel.Welcome{ContentIDs: []int64{draft.ID}}}}, "welcome.content_ids[0]"},
			{channel.Input{Name: "x", Spec: channel.Spec{Receivers: []channel.Receiver{{StaffID: e.staff["lisi"]}}, TagIDs: []int64{12345}}}, "tag_ids[0]"},
		}
		for _, b := range bad {
			_, err := e.svc.Save(ctx, 0, &b.in, 0)
			var fe *customer.FieldError
			if !errors.As(err, &fe) || fe.Field != b.field {
				t.Errorf("want a field error on %s, got %v", b.field, err)
			}
		}
		page, _ := s.ListChannelCodes(ctx, "", 0, 10)
		if page.Total != 1 {
			t.Fatalf("bad input wrote codes: %d", page.Total)
		}
	})
}

func TestWelcomeAttachments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		lib := content.NewService(s)
		img := &store.ContentBlob{SHA256: "x", MIME: "image/png", Data: []byte("\x89PNG\r\n\x1a\nfake")}
		if err := s.SaveContentBlob(ctx, img); err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, it := range []*content.Item{
			{Kind: store.ContentImage, Title: "海报", Body: store.ContentBody{ImageID: img.ID}},
			{Kind: store.ContentLink, Title: "新人礼", Body: store.ContentBody{URL: "https://shop.example.cn/gift"}},
			{Kind: store.ContentMiniProgram, Title: "商城", Body: store.ContentBody{AppID: "wx0123456789abcdef", Page: "pages/index/index", ImageID: img.ID}},
		} {
			c, err := lib.Create(ctx, it, e.staff["zhangsan"])
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range []string{"submit", "approve", "publish"} {
				if _, err := lib.Move(ctx, c.ID, a, e.staff["lisi"], ""); err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, c.ID)
		}
		c, err := e.svc.Save(ctx, 0, &channel.Input{Name: "直播间", State: "live-1", Spec: channel.Spec{
			Receivers: []channel.Receiver{{StaffID: e.staff["zhangsan"]}}, Welcome: channel.Welcome{Text: "欢迎", ContentIDs: ids}}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.add("zhangsan", "wmW", c.State, "WELCOME-W")
		ws := e.api.Welcomes()
		if len(ws) != 1 || len(ws[0].Attachments) != 3 {
			t.Fatalf("welcome %+v", ws)
		}
		a := ws[0].Attachments
		if a[0].MsgType != "image" || string(e.api.Media(a[0].Image.MediaID)) != string(img.Data) ||
			a[1].MsgType != "link" || a[1].Link.URL != "https://shop.example.cn/gift" ||
			a[2].MsgType != "miniprogram" || a[2].MiniProgram.AppID != "wx0123456789abcdef" || e.api.Media(a[2].MiniProgram.PicMediaID) == nil {
			t.Fatalf("attachments %+v", a)
		}
		adds, _ := s.ChannelAdds(ctx, c.ID, 1)
		if adds[0].Welcome != "sent" {
			t.Fatalf("welcome outcome %q", adds[0].Welcome)
		}
	})
}
