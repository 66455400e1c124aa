package wecom_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/wecom"
)

func (e *env) tagNames(customerID int64) []string {
	e.t.Helper()
	as, err := e.s.CustomerTags(context.Background(), customerID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.GroupName+":"+a.Tag.Name)
	}
	return out
}

func (e *env) ok(ev wecom.Event) {
	e.t.Helper()
	if rec := e.deliver(ev); rec.Code != 200 {
		e.t.Fatalf("%s: %d %s", ev.Kind(), rec.Code, rec.Body)
	}
}

func TestContactEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.api.TagGroups = []wecom.CorpTagGroup{{GroupID: "etG1", GroupName: "客户等级", Tags: []wecom.CorpTag{{ID: "etVIP", Name: "VIP"}, {ID: "etNEW", Name: "新客"}}}}
		d := &wecom.ContactDetail{Contact: wecom.ExternalContact{ExternalUserID: extCust, Name: "李四", Avatar: "https://wework.qpic.cn/a.png", Type: 1, Gender: 2, UnionID: "oUNION1"}}
		d.FollowUsers = append(d.FollowUsers, wecom.FollowUser{UserID: userZS, State: "qr-spring"})
		d.FollowUsers[0].Tags = append(d.FollowUsers[0].Tags, struct {
			GroupName string `json:"group_name"`
			TagName   string `json:"tag_name"`
			TagID     string `json:"tag_id"`
			Type      int    `json:"type"`
		}{"客户等级", "VIP", "etVIP", 1})
		e.api.Contacts[extCust] = d
		if err := s.SetWeComChannelCode(ctx, "qr-spring", "春季门店活码"); err != nil {
			t.Fatal(err)
		}

		// The tag library first, so the customer's WeCom tag has a siyu tag to land on.
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "create", TagType: "tag_group", ID: "etG1"})
		e.ok(addEvent(extCust, "qr-spring"))
		if n := e.drain(); n != 2 {
			t.Fatalf("drained %d", n)
		}
		c := e.customerOf(extCust)
		if c.Name != "李四" || c.Gender != "female" || c.AvatarURL == "" || c.Source != "春季门店活码" || c.OwnerID != e.staffID {
			t.Fatalf("customer %+v", c)
		}
		if id, _ := s.CustomerByIdentity(ctx, customerIdentity("unionid", "oUNION1")); id != c.ID {
			t.Fatalf("unionid not attached: %d", id)
		}
		if got := e.tagNames(c.ID); !slices.Equal(got, []string{"企微标签:客户等级/VIP"}) {
			t.Fatalf("tags %v", got)
		}
		evs, _ := s.CustomerEvents(ctx, c.ID, time.Time{}, 10)
		if len(evs) != 1 || evs[0].Name != wecom.EventAdded || evs[0].Properties["state"] != "qr-spring" || evs[0].Properties["source"] != "春季门店活码" {
			t.Fatalf("event %+v", evs[0])
		}

		// An unknown state is stored raw; an existing source and owner are kept.
		e.ok(addEvent("wmOTHER", "raw-state-7"))
		e.ok(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.AddHalfExternalContact, UserID: "lisi-not-mapped", ExternalUserID: extCust, State: "qr-other"})
		e.ok(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.EditExternalContact, UserID: userZS, ExternalUserID: extCust})
		e.ok(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.DelExternalContact, UserID: userZS, ExternalUserID: extCust, Source: "DELETE_BY_TRANSFER"})
		e.ok(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.DelFollowUser, UserID: userZS, ExternalUserID: extCust})
		e.ok(wecom.Event{Event: wecom.EventExternalContact, ChangeType: wecom.TransferFail, UserID: userZS, ExternalUserID: extCust, FailReason: "customer_refused"})
		if n := e.drain(); n != 6 {
			t.Fatalf("drained %d", n)
		}
		if o := e.customerOf("wmOTHER"); o.Source != "raw-state-7" || o.OwnerID != e.staffID {
			t.Fatalf("other %+v", o)
		}
		c = e.customerOf(extCust)
		if c.Source != "春季门店活码" || c.OwnerID != e.staffID {
			t.Fatalf("source or owner overwritten: %+v", c)
		}
		want := []string{wecom.EventAdded, wecom.EventAddedHalf, wecom.EventEdited, wecom.EventStaffDeleted, wecom.EventDeletedStaff, wecom.EventChurnAlert, wecom.EventTransferFail}
		if got := e.eventNames(c.ID); !slices.Equal(got, want) {
			t.Fatalf("events %v\nwant   %v", got, want)
		}
		evs, _ = s.CustomerEvents(ctx, c.ID, time.Time{}, 10)
		for _, ev := range evs {
			if ev.Name == wecom.EventChurnAlert && ev.Properties["owner_id"] != float64(e.staffID) {
				t.Fatalf("churn alert %+v", ev.Properties)
			}
		}
	})
}

func TestGroupChatEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.ok(addEvent(extCust, ""))
		e.ok(wecom.Event{Event: wecom.EventExternalChat, ChangeType: "create", ChatID: "wrCHAT1"})
		e.ok(wecom.Event{Event: wecom.EventExternalChat, ChangeType: "update", UpdateDetail: "add_member", ChatID: "wrCHAT1", JoinScene: 3,
			MemChangeCnt: 3, MemChangeList: []string{extCust, "wmNEWCOMER", userZS}})
		e.ok(wecom.Event{Event: wecom.EventExternalChat, ChangeType: "update", UpdateDetail: "del_member", ChatID: "wrCHAT1", QuitScene: 0,
			MemChangeCnt: 1, MemChangeList: []string{extCust}})
		e.drain()
		g, err := s.WeComGroupChat(ctx, "wrCHAT1")
		if err != nil || g.Status != store.WeComChatActive || !slices.Equal(g.Members, []string{"wmNEWCOMER", userZS}) {
			t.Fatalf("chat %+v %v", g, err)
		}
		c := e.customerOf(extCust)
		if got := e.eventNames(c.ID); !slices.Equal(got, []string{wecom.EventAdded, wecom.EventJoinedGroup, wecom.EventLeftGroup}) {
			t.Fatalf("events %v", got)
		}
		newcomer := e.customerOf("wmNEWCOMER")
		e.ok(wecom.Event{Event: wecom.EventExternalChat, ChangeType: "dismiss", ChatID: "wrCHAT1"})
		e.drain()
		g, _ = s.WeComGroupChat(ctx, "wrCHAT1")
		if g.Status != store.WeComChatDismissed || len(g.Members) != 0 {
			t.Fatalf("dismissed chat %+v", g)
		}
		if got := e.eventNames(newcomer.ID); !slices.Equal(got, []string{wecom.EventJoinedGroup, wecom.EventLeftGroup}) {
			t.Fatalf("newcomer events %v", got)
		}
	})
}

func TestTagLibraryEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.api.TagGroups = []wecom.CorpTagGroup{
			{GroupID: "etG1", GroupName: "等级", Order: 1, Tags: []wecom.CorpTag{{ID: "etA", Name: "A"}, {ID: "etB", Name: "B"}}},
			{GroupID: "etG2", GroupName: "兴趣", Order: 2, Tags: []wecom.CorpTag{{ID: "etC", Name: "跑步"}}},
		}
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "shuffle"})
		e.drain()
		names := func() []string {
			gs, err := s.ListTagGroups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, g := range gs {
				if g.Name == store.WeComTagGroupName {
					for _, tg := range g.Tags {
						out = append(out, tg.Name)
					}
				}
			}
			return out
		}
		if got := names(); !slices.Equal(got, []string{"等级/A", "等级/B", "兴趣/跑步"}) {
			t.Fatalf("mirrored %v", got)
		}
		// A customer holding B loses it when WeCom deletes B (recorded with reason wecom).
		e.ok(addEvent(extCust, ""))
		e.drain()
		c := e.customerOf(extCust)
		err := s.InTx(ctx, func(tx *store.Tx) error {
			id, err := tx.WeComTag("etB")
			if err != nil {
				return err
			}
			_, err = tx.ChangeTags([]int64{c.ID}, []int64{id}, nil, tagCause())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		e.api.TagGroups[0].Tags[0].Name = "A+"
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "update", TagType: "tag", ID: "etA"})
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "delete", TagType: "tag", ID: "etB"})
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "delete", TagType: "tag_group", ID: "etG2"})
		if n := e.drain(); n != 3 {
			t.Fatalf("drained %d", n)
		}
		if got := names(); !slices.Equal(got, []string{"等级/A+"}) {
			t.Fatalf("after update and deletes %v", got)
		}
		if got := e.tagNames(c.ID); len(got) != 0 {
			t.Fatalf("customer still holds %v", got)
		}
		hist, err := s.TagHistory(ctx, c.ID, 0, 10)
		if err != nil || len(hist) != 2 || hist[0].Reason != "wecom" {
			t.Fatalf("history %+v %v", hist, err)
		}
	})
}

func TestWorkerRetriesAndGivesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		e := newEnv(t, s)
		e.w.API = nil // the tag library cannot be read: the event fails and waits
		e.ok(wecom.Event{Event: wecom.EventExternalTag, ChangeType: "create", TagType: "tag", ID: "etX"})
		e.ok(addEvent(extCust, ""))
		if n := e.drain(); n != 2 {
			t.Fatalf("drained %d", n)
		}
		inbox, _ := s.WeComInbox(ctx)
		if inbox[0].State != store.WeComPending || inbox[0].Attempts != 1 || inbox[0].LastError == "" || inbox[1].State != store.WeComDone {
			t.Fatalf("inbox %+v %+v", inbox[0], inbox[1])
		}
		if n := e.drain(); n != 0 {
			t.Fatalf("retried before its backoff: %d", n)
		}
		for i := 0; i < store.WeComMaxAttempts; i++ {
			e.now = e.now.Add(2 * time.Hour)
			e.drain()
		}
		inbox, _ = s.WeComInbox(ctx)
		if inbox[0].State != store.WeComFailed || inbox[0].Attempts != store.WeComMaxAttempts {
			t.Fatalf("not given up: %+v", inbox[0])
		}
	})
}
