package wecom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/channel"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// The events siyu records for WeCom callbacks (event names operators see and build tag
// rules, segments and SOPs on).
const (
	EventAdded        = "加企微"
	EventAddedHalf    = "加企微(待通过)"
	EventEdited       = "编辑企微客户"
	EventStaffDeleted = "员工删除客户"
	EventDeletedStaff = "删除员工" // the customer deleted the staff member
	EventChurnAlert   = "流失提醒" // for the owner: the SOP engine turns it into a task
	EventTransferFail = "客户接替失败"
	EventJoinedGroup  = "入群"
	EventLeftGroup    = "退群"
)

// API is what the worker asks WeCom (Client implements it).
type API interface {
	ExternalContact(ctx context.Context, externalUserID string) (*ContactDetail, error)
	CorpTags(ctx context.Context, tagIDs, groupIDs []string) ([]CorpTagGroup, error)
}

// Worker applies queued callback events, oldest first, each in one transaction with marking
// it done: a crash between the two repeats the whole event, never half of it.
type Worker struct {
	Store *store.Store
	// API, when set, fills in customers' profiles and tags and mirrors WeCom's tag library;
	// without it contact events use the callback's fields only and tag-library changes other
	// than deletions wait (and are retried) until it is configured.
	API API
	Log *slog.Logger
	// Channels, when set, applies siyu's channel codes (渠道活码) to contacts added through
	// their state: the add is counted, the code's tags set, the welcome message sent.
	Channels ChannelCodes
}

// ChannelCodes applies channel codes (internal/channel.Service implements it).
type ChannelCodes interface {
	// OnAdded runs in the event's transaction and returns what to do once it committed.
	OnAdded(tx *store.Tx, a channel.Added) (func(context.Context), error)
	// OnDeleted records that a customer deleted a staff member.
	OnDeleted(tx *store.Tx, customerID, staffID int64, at time.Time) error
}

func (w *Worker) log() *slog.Logger {
	if w.Log == nil {
		return slog.Default()
	}
	return w.Log
}

// errTaken: another instance took the event between reading and locking it.
var errTaken = errors.New("taken")

// ProcessOne applies the oldest due event; false when none is due. A failing event is
// recorded and retried later with backoff; ProcessOne returns an error only when the store
// itself fails.
func (w *Worker) ProcessOne(ctx context.Context) (bool, error) {
	row, err := w.Store.NextWeComEvent(ctx)
	if err != nil || row == nil {
		return false, err
	}
	err = w.process(ctx, row)
	if errors.Is(err, errTaken) {
		return true, nil
	}
	if err != nil {
		backoff := min(10*time.Second<<min(row.Attempts, 10), time.Hour)
		gaveUp, ferr := w.Store.FailWeComEvent(ctx, row.ID, err, backoff)
		if ferr != nil {
			return false, ferr
		}
		w.log().Warn("wecom event failed", "event", row.Kind, "attempt", row.Attempts+1, "gave_up", gaveUp, "err", err)
	}
	return true, nil
}

// Drain applies events until none is due, and returns how many it handled.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	n := 0
	for {
		did, err := w.ProcessOne(ctx)
		if err != nil || !did {
			return n, err
		}
		n++
	}
}

// Run drains the inbox whenever wake fires or every interval, until ctx ends, and forgets
// callback signatures old enough that their timestamps are refused anyway.
func (w *Worker) Run(ctx context.Context, wake <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := w.Drain(ctx); err != nil && ctx.Err() == nil {
			w.log().Error("wecom worker", "err", err)
		}
		if _, err := w.Store.PruneWeComNonces(ctx, w.Store.Now().Add(-3*Freshness)); err != nil && ctx.Err() == nil {
			w.log().Warn("wecom worker: prune nonces", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// prepared is what an event needs from the WeCom API, fetched before its transaction.
type prepared struct {
	contact *ContactDetail
	tags    []CorpTagGroup
}

func (w *Worker) prepare(ctx context.Context, ev *Event) (*prepared, error) {
	p := &prepared{}
	switch ev.Event {
	case EventExternalContact:
		if w.API == nil || ev.ExternalUserID == "" {
			break
		}
		switch ev.ChangeType {
		case AddExternalContact, AddHalfExternalContact, EditExternalContact:
			d, err := w.API.ExternalContact(ctx, ev.ExternalUserID)
			if err != nil {
				// The callback's own fields are enough to record the event; the profile
				// waits for the next edit or sync rather than delaying the customer.
				w.log().Warn("wecom: read external contact", "event", ev.Kind(), "err", err)
				break
			}
			p.contact = d
		}
	case EventExternalTag:
		if ev.ChangeType == "delete" {
			break
		}
		if w.API == nil {
			return nil, errors.New("WeCom API not configured: the tag library cannot be read")
		}
		var tagIDs, groupIDs []string
		switch {
		case ev.ChangeType == "shuffle":
		case ev.TagType == "tag_group":
			groupIDs = []string{ev.ID}
		default:
			tagIDs = []string{ev.ID}
		}
		groups, err := w.API.CorpTags(ctx, tagIDs, groupIDs)
		if err != nil {
			return nil, err
		}
		p.tags = groups
	}
	return p, nil
}

func (w *Worker) process(ctx context.Context, row *store.WeComInboxRow) error {
	ev, err := ParseEvent([]byte(row.Payload))
	if err != nil {
		return err
	}
	prep, err := w.prepare(ctx, ev)
	if err != nil {
		return err
	}
	var after []func(context.Context)
	err = w.Store.InTx(ctx, func(tx *store.Tx) error {
		ok, err := tx.LockWeComEvent(row.ID)
		if err != nil {
			return err
		}
		if !ok {
			return errTaken
		}
		a := &applier{tx: tx, ev: ev, key: row.Key, prep: prep, channels: w.Channels}
		switch ev.Event {
		case EventExternalContact:
			err = a.contact()
		case EventExternalChat:
			err = a.chat()
		case EventExternalTag:
			err = a.tagLibrary()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", ev.Kind(), err)
		}
		if err := a.flush(); err != nil {
			return err
		}
		after = a.after
		return tx.FinishWeComEvent(row.ID)
	})
	if err != nil {
		return err
	}
	// What must wait for the commit (a welcome message, a contact way update) runs once the
	// event is applied; its failures are recorded where they belong, not retried here.
	for _, fn := range after {
		fn(ctx)
	}
	return nil
}

// applier applies one event inside its transaction, collecting the customer events it
// records.
type applier struct {
	tx     *store.Tx
	ev     *Event
	key    string
	prep   *prepared
	events []*event.Event

	channels ChannelCodes
	after    []func(context.Context)
}

// record adds a customer event; its message id derives from the inbox key, so that applying
// the same event again (after a crash before the commit) stores nothing twice.
func (a *applier) record(customerID int64, name string, props map[string]any) {
	a.events = append(a.events, &event.Event{
		MessageID:  "wecom:" + a.key + ":" + strconv.Itoa(len(a.events)),
		CustomerID: customerID,
		Type:       "track",
		Name:       name,
		Properties: props,
		Context:    map[string]any{"channel": "wecom"},
		Timestamp:  a.ev.Time(),
	})
}

func (a *applier) flush() error {
	if len(a.events) == 0 {
		return nil
	}
	_, err := a.tx.InsertEvents(a.events)
	return err
}

// customer resolves an external_userid (and the unionid WeCom gave) to a customer, creating it.
func (a *applier) customer(externalUserID string) (int64, error) {
	ids := []customer.Identity{{Kind: customer.WeComExternal, Value: externalUserID}}
	if c := a.prep.contact; c != nil && c.Contact.UnionID != "" && c.Contact.ExternalUserID == externalUserID {
		ids = append(ids, customer.Identity{Kind: customer.UnionID, Value: c.Contact.UnionID})
	}
	res, err := a.tx.Resolve(ids, "wecom")
	return res.CustomerID, err
}

func (a *applier) contact() error {
	ev := a.ev
	if ev.ExternalUserID == "" {
		return nil // nothing names a customer
	}
	cid, err := a.customer(ev.ExternalUserID)
	if err != nil {
		return err
	}
	staffID, login, err := a.tx.WeComStaff(ev.UserID)
	if err != nil {
		return err
	}
	props := map[string]any{"wecom_userid": ev.UserID, "external_userid": ev.ExternalUserID}
	if staffID != 0 {
		props["staff_id"] = staffID
	}
	switch ev.ChangeType {
	case AddExternalContact, AddHalfExternalContact:
		owner, source, err := a.tx.CustomerOwnerSource(cid)
		if err != nil {
			return err
		}
		p := &customer.Patch{}
		if owner == 0 && login != "" {
			p.Owner = &login
		}
		if ev.State != "" {
			label, ok, err := a.tx.WeComChannelSource(ev.State)
			if err != nil {
				return err
			}
			if !ok {
				label = ev.State
			}
			props["state"], props["source"] = ev.State, label
			if source == "" {
				p.Source = &label
			}
		}
		if ev.WelcomeCode != "" {
			props["welcome_code"] = true // the welcome message can still be sent
		}
		if err := a.profile(cid, p); err != nil {
			return err
		}
		if ev.State != "" && a.channels != nil {
			fn, err := a.channels.OnAdded(a.tx, channel.Added{Key: a.key, State: ev.State, CustomerID: cid, StaffID: staffID,
				ExternalUserID: ev.ExternalUserID, WelcomeCode: ev.WelcomeCode, At: ev.Time()})
			if err != nil {
				return err
			}
			if fn != nil {
				a.after = append(a.after, fn)
			}
		}
		if err := a.tx.TouchLastSeen(cid, ev.Time()); err != nil {
			return err
		}
		name := EventAdded
		if ev.ChangeType == AddHalfExternalContact {
			name = EventAddedHalf
		}
		a.record(cid, name, props)
	case EditExternalContact:
		if err := a.profile(cid, &customer.Patch{}); err != nil {
			return err
		}
		a.record(cid, EventEdited, props)
	case DelExternalContact:
		if ev.Source != "" {
			props["source"] = ev.Source
		}
		a.record(cid, EventStaffDeleted, props)
	case DelFollowUser:
		a.record(cid, EventDeletedStaff, props)
		if a.channels != nil {
			if err := a.channels.OnDeleted(a.tx, cid, staffID, ev.Time()); err != nil {
				return err
			}
		}
		owner, _, err := a.tx.CustomerOwnerSource(cid)
		if err != nil {
			return err
		}
		alert := map[string]any{"wecom_userid": ev.UserID, "external_userid": ev.ExternalUserID}
		if staffID != 0 {
			alert["staff_id"] = staffID
		}
		if owner != 0 {
			alert["owner_id"] = owner
		}
		a.record(cid, EventChurnAlert, alert)
	case TransferFail:
		props["fail_reason"] = ev.FailReason
		a.record(cid, EventTransferFail, props)
	}
	return nil
}

// profile applies p plus what externalcontact/get said (name, avatar, gender) and marks the
// customer's corp tags that siyu mirrors.
func (a *applier) profile(cid int64, p *customer.Patch) error {
	if d := a.prep.contact; d != nil {
		c := d.Contact
		if c.Name != "" {
			p.Name = &c.Name
		}
		if c.Avatar != "" {
			p.AvatarURL = &c.Avatar
		}
		if c.Gender == 1 || c.Gender == 2 {
			g := map[int]string{1: "male", 2: "female"}[c.Gender]
			p.Gender = &g
		}
		if err := a.markTags(cid, d); err != nil {
			return err
		}
	}
	if err := a.tx.CheckPatch(p); err != nil {
		return err
	}
	return a.tx.ApplyPatch(cid, p)
}

// markTags adds the mirrored siyu tags of the corp tags the staff member of this event set
// on the customer in WeCom.
func (a *applier) markTags(cid int64, d *ContactDetail) error {
	var add []int64
	for _, fu := range d.FollowUsers {
		if fu.UserID != a.ev.UserID {
			continue
		}
		for _, t := range fu.Tags {
			if t.Type != 1 || t.TagID == "" {
				continue
			}
			id, err := a.tx.WeComTag(t.TagID)
			if err != nil {
				return err
			}
			if id != 0 {
				add = append(add, id)
			}
		}
	}
	if len(add) == 0 {
		return nil
	}
	_, err := a.tx.ChangeTags([]int64{cid}, add, nil, tag.Cause{Reason: tag.ReasonWeCom, Ref: "wecom:" + a.ev.UserID})
	return err
}

// isExternal tells an external contact's id (wm… for WeChat users, wo… for other corps'
// WeCom users) from a staff member's userid.
func isExternal(id string) bool { return strings.HasPrefix(id, "wm") || strings.HasPrefix(id, "wo") }

// member returns the customer a group member is, 0 for staff.
func (a *applier) member(id string) (int64, error) {
	cid, err := a.tx.IdentityOwner(customer.Identity{Kind: customer.WeComExternal, Value: id})
	if err != nil || cid != 0 {
		return cid, err
	}
	if staffID, _, err := a.tx.WeComStaff(id); err != nil || staffID != 0 {
		return 0, err
	}
	if !isExternal(id) {
		return 0, nil
	}
	return a.customer(id)
}

func (a *applier) chat() error {
	ev := a.ev
	if ev.ChatID == "" {
		return nil
	}
	switch ev.ChangeType {
	case "create":
		return a.tx.UpsertWeComGroupChat(ev.ChatID, "", "", store.WeComChatActive)
	case "dismiss":
		members, err := a.tx.WeComGroupMembers(ev.ChatID)
		if err != nil {
			return err
		}
		for _, m := range sortedKeys(members) {
			if _, err := a.tx.RemoveWeComGroupMember(ev.ChatID, m); err != nil {
				return err
			}
			if cid := members[m]; cid != 0 {
				a.record(cid, EventLeftGroup, map[string]any{"chat_id": ev.ChatID, "dismissed": true})
			}
		}
		return a.tx.UpsertWeComGroupChat(ev.ChatID, "", "", store.WeComChatDismissed)
	case "update":
	default:
		return nil
	}
	if err := a.tx.UpsertWeComGroupChat(ev.ChatID, "", "", store.WeComChatActive); err != nil {
		return err
	}
	for _, m := range ev.MemChangeList {
		switch ev.UpdateDetail {
		case "add_member":
			cid, err := a.member(m)
			if err != nil {
				return err
			}
			added, err := a.tx.AddWeComGroupMember(ev.ChatID, m, cid, ev.Time())
			if err != nil {
				return err
			}
			if added && cid != 0 {
				a.record(cid, EventJoinedGroup, map[string]any{"chat_id": ev.ChatID, "join_scene": ev.JoinScene})
			}
		case "del_member":
			cid, err := a.tx.IdentityOwner(customer.Identity{Kind: customer.WeComExternal, Value: m})
			if err != nil {
				return err
			}
			removed, err := a.tx.RemoveWeComGroupMember(ev.ChatID, m)
			if err != nil {
				return err
			}
			if removed && cid != 0 {
				a.record(cid, EventLeftGroup, map[string]any{"chat_id": ev.ChatID, "quit_scene": ev.QuitScene})
			}
		}
	}
	return nil
}

func (a *applier) tagLibrary() error {
	ev := a.ev
	if ev.ChangeType == "delete" {
		var tags, groups []string
		if ev.TagType == "tag_group" {
			groups = []string{ev.ID}
		} else {
			tags = []string{ev.ID}
		}
		_, err := a.tx.DeleteWeComTags(tags, groups)
		return err
	}
	var gone []string
	for _, g := range a.prep.tags {
		if g.Deleted {
			gone = append(gone, g.GroupID)
			continue
		}
		for _, t := range g.Tags {
			if t.Deleted {
				if _, err := a.tx.DeleteWeComTags([]string{t.ID}, nil); err != nil {
					return err
				}
				continue
			}
			if _, err := a.tx.MirrorWeComTag(t.ID, g.GroupID, g.GroupName, t.Name, g.Order*1000+t.Order); err != nil {
				return err
			}
		}
	}
	if len(gone) > 0 {
		if _, err := a.tx.DeleteWeComTags(nil, gone); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

// Serve runs the worker for siyu serve until ctx ends: it reads the configuration (settings,
// then getenv), reads WeCom's API when a secret is configured (a secret set later takes
// effect at the next start), and drains the inbox every second, which also picks up events
// that another instance queued.
func Serve(ctx context.Context, st *store.Store, getenv func(string) string, log *slog.Logger) {
	w := &Worker{Store: st, Log: log}
	codes := channel.NewService(st, log)
	w.Channels = codes
	cfg, err := LoadConfig(ctx, st, getenv)
	if err != nil {
		log.Error("wecom worker: configuration", "err", err)
	}
	if cfg.APIReady() {
		client, err := NewClient(cfg, st)
		if err != nil {
			log.Error("wecom worker: api client", "err", err)
		} else {
			w.API = client
			codes.WeCom = func(context.Context) (channel.WeCom, error) { return client, nil }
		}
	}
	if cfg.CallbackReady() {
		log.Info("wecom worker started", "config", cfg, "api", w.API != nil)
	}
	w.Run(ctx, nil, time.Second)
}
