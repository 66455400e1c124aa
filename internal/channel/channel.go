// Package channel runs channel codes (渠道活码): a QR code per channel or campaign, known to
// WeCom by its state, that hands each new contact to the right staff member — round-robin
// over a list with daily capacities and a fallback, or over the staff of a persona (人设) —
// greets them with a welcome message and stamps their source and tags. The code points at
// one staff member at a time (a WeCom contact way with a single user, updated after each add
// when the turn moves on), so the distribution is siyu's, not WeCom's random one.
package channel

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Receiving modes.
const (
	ByList    = "list"    // the receivers, round-robin with daily capacities
	ByPersona = "persona" // the enabled staff of a persona, round-robin
)

// Limits.
const (
	maxState     = 30 // WeCom's limit on a contact way's state
	maxReceivers = 100
	maxWelcome   = 4000
	maxAttach    = 9
	maxTags      = 20
)

// Welcome is the message a new contact gets: text in the SOP template syntax ({{.Name}},
// {{.Owner}}, {{.Persona}}) and published content items as attachments.
type Welcome struct {
	Text       string  `json:"text,omitempty"`
	ContentIDs []int64 `json:"content_ids,omitempty"`
}

// Spec is how a code receives and greets contacts.
type Spec struct {
	Mode      string     `json:"mode"`
	Receivers []Receiver `json:"receivers,omitempty"`
	PersonaID int64      `json:"persona_id,omitempty"`
	// PersonaCap is the daily capacity of each staff member of the persona (0: no limit).
	PersonaCap      int     `json:"persona_daily_cap,omitempty"`
	FallbackStaffID int64   `json:"fallback_staff_id,omitempty"`
	Welcome         Welcome `json:"welcome"`
	TagIDs          []int64 `json:"tag_ids,omitempty"`
	SkipVerify      bool    `json:"skip_verify"`
}

// Input is a code as operators write it.
type Input struct {
	Name     string `json:"name"`
	State    string `json:"state,omitempty"` // generated when empty
	Channel  string `json:"channel,omitempty"`
	Campaign string `json:"campaign,omitempty"`
	Source   string `json:"source,omitempty"` // the customers' source; the name when empty
	Status   string `json:"status,omitempty"` // active (default) or paused
	Spec
}

// Code is a stored code with its spec read.
type Code struct {
	*store.ChannelCodeRow
	Spec Spec `json:"spec"`
}

// WeCom is what codes ask WeCom (wecom.Client implements it); user ids are WeCom userids.
type WeCom interface {
	AddContactWay(ctx context.Context, state string, users []string, skipVerify bool, remark string) (configID, qrCode string, err error)
	UpdateContactWay(ctx context.Context, configID, state string, users []string, skipVerify bool, remark string) error
	DelContactWay(ctx context.Context, configID string) error
	SendWelcomeMsg(ctx context.Context, welcomeCode, text string, atts []store.Attachment) error
	UploadImage(ctx context.Context, filename string, data []byte) (mediaID string, err error)
}

// Service runs channel codes over the store, and WeCom when one is given.
type Service struct {
	st *store.Store
	// WeCom, when set, makes each code a WeCom contact way; nil keeps codes in siyu only.
	WeCom func(ctx context.Context) (WeCom, error)
	Log   *slog.Logger
	// Location is the day boundary of daily capacities (default Asia/Shanghai).
	Location *time.Location
}

// NewService returns the service over st.
func NewService(st *store.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, Log: log, Location: segment.Shanghai}
}

func fieldErr(field, format string, args ...any) error {
	return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var stateRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// newState makes a state for a code that was given none: "sy" and 12 random characters.
func newState() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "sy" + string(b)
}

// checkText is the library's text check (content.CheckText).
var checkText = content.CheckText

// validate checks in and fills its defaults, in tx.
func (s *Service) validate(ctx context.Context, tx *store.Tx, in *Input) error {
	in.Name, in.Channel, in.Campaign, in.Source = strings.TrimSpace(in.Name), strings.TrimSpace(in.Channel), strings.TrimSpace(in.Campaign), strings.TrimSpace(in.Source)
	if err := checkText("name", in.Name, 60, true); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"channel", in.Channel}, {"campaign", in.Campaign}, {"source", in.Source}} {
		if err := checkText(f.name, f.v, 60, false); err != nil {
			return err
		}
	}
	if in.Source == "" {
		in.Source = in.Name
	}
	in.State = strings.TrimSpace(in.State)
	if in.State == "" {
		in.State = newState()
	}
	if len(in.State) > maxState || !stateRE.MatchString(in.State) {
		return fieldErr("state", "at most %d letters, digits, - or _ (WeCom's limit)", maxState)
	}
	switch in.Status {
	case "":
		in.Status = store.ChannelCodeActive
	case store.ChannelCodeActive, store.ChannelCodePaused:
	default:
		return fieldErr("status", "want active or paused")
	}
	staffOK := func(field string, id int64) error {
		ok, err := tx.StaffEnabled(id)
		if err != nil {
			return err
		}
		if !ok {
			return fieldErr(field, "no enabled staff member %d", id)
		}
		return nil
	}
	sp := &in.Spec
	switch sp.Mode {
	case "", ByList:
		sp.Mode = ByList
		if len(sp.Receivers) == 0 {
			return fieldErr("receivers", "at least one staff member")
		}
		if len(sp.Receivers) > maxReceivers {
			return fieldErr("receivers", "at most %d", maxReceivers)
		}
		if sp.PersonaID != 0 {
			return fieldErr("persona_id", "only for mode persona")
		}
		for i, r := range sp.Receivers {
			field := fmt.Sprintf("receivers[%d]", i)
			if slices.IndexFunc(sp.Receivers, func(x Receiver) bool { return x.StaffID == r.StaffID }) != i {
				return fieldErr(field+".staff_id", "staff member %d listed twice", r.StaffID)
			}
			if err := staffOK(field+".staff_id", r.StaffID); err != nil {
				return err
			}
			if r.DailyCap < 0 || r.DailyCap > 10000 {
				return fieldErr(field+".daily_cap", "between 0 (no limit) and 10000")
			}
		}
	case ByPersona:
		if len(sp.Receivers) > 0 {
			return fieldErr("receivers", "not used in mode persona: the persona's staff receive")
		}
		if sp.PersonaID <= 0 {
			return fieldErr("persona_id", "required for mode persona")
		}
		staff, err := tx.PersonaStaff(sp.PersonaID)
		if err != nil {
			return err
		}
		if _, err := s.st.Persona(ctx, sp.PersonaID); errors.Is(err, store.ErrNotFound) {
			return fieldErr("persona_id", "no persona %d", sp.PersonaID)
		} else if err != nil {
			return err
		}
		if len(staff) == 0 && sp.FallbackStaffID == 0 {
			return fieldErr("persona_id", "persona %d has no enabled staff member: link staff to it or set a fallback", sp.PersonaID)
		}
	default:
		return fieldErr("mode", "want list or persona")
	}
	if sp.PersonaCap < 0 || sp.PersonaCap > 10000 {
		return fieldErr("persona_daily_cap", "between 0 (no limit) and 10000")
	}
	if sp.FallbackStaffID != 0 {
		if err := staffOK("fallback_staff_id", sp.FallbackStaffID); err != nil {
			return err
		}
	}
	if err := checkText("welcome.text", sp.Welcome.Text, maxWelcome, false); err != nil {
		return err
	}
	if sp.Welcome.Text != "" {
		keys, err := sop.AttrKeys(ctx, s.st)
		if err != nil {
			return err
		}
		if err := sop.CheckTemplate(sp.Welcome.Text, keys); err != nil {
			return fieldErr("welcome.text", "%v", err)
		}
	}
	if len(sp.Welcome.ContentIDs) > maxAttach {
		return fieldErr("welcome.content_ids", "at most %d", maxAttach)
	}
	for i, id := range sp.Welcome.ContentIDs {
		_, err := s.st.PublishedContent(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fieldErr(fmt.Sprintf("welcome.content_ids[%d]", i), "no content %d", id)
		case errors.Is(err, store.ErrNotPublished):
			return fieldErr(fmt.Sprintf("welcome.content_ids[%d]", i), "content %d is not published: only published content may be picked", id)
		case err != nil:
			return err
		}
	}
	if len(sp.TagIDs) > maxTags {
		return fieldErr("tag_ids", "at most %d", maxTags)
	}
	have, err := tx.ExistingTags(sp.TagIDs)
	if err != nil {
		return err
	}
	for i, id := range sp.TagIDs {
		if !slices.Contains(have, id) {
			return fieldErr(fmt.Sprintf("tag_ids[%d]", i), "no tag %d", id)
		}
	}
	return nil
}

// receivers is who may receive a code's contacts now.
func receivers(tx *store.Tx, sp *Spec) ([]Receiver, error) {
	if sp.Mode != ByPersona {
		return sp.Receivers, nil
	}
	ids, err := tx.PersonaStaff(sp.PersonaID)
	if err != nil {
		return nil, err
	}
	out := make([]Receiver, len(ids))
	for i, id := range ids {
		out[i] = Receiver{StaffID: id, DailyCap: sp.PersonaCap}
	}
	return out, nil
}

// day is the date of t where daily capacities are counted.
func (s *Service) day(t time.Time) string {
	loc := s.Location
	if loc == nil {
		loc = segment.Shanghai
	}
	return t.In(loc).Format("2006-01-02")
}

// next is who receives a code's next contact, given who received the last one.
func (s *Service) next(tx *store.Tx, codeID int64, sp *Spec, last int64) (int64, error) {
	rs, err := receivers(tx, sp)
	if err != nil {
		return 0, err
	}
	today, err := tx.ChannelAddsOn(codeID, s.day(tx.Now()))
	if err != nil {
		return 0, err
	}
	id, _ := Pick(rs, today, last, sp.FallbackStaffID)
	return id, nil
}

// Load reads a stored code's spec.
func Load(r *store.ChannelCodeRow) (*Code, error) {
	c := &Code{ChannelCodeRow: r}
	if err := json.Unmarshal(r.Spec, &c.Spec); err != nil {
		return nil, fmt.Errorf("channel code %d spec: %w", r.ID, err)
	}
	return c, nil
}

// Get reads a code.
func (s *Service) Get(ctx context.Context, id int64) (*Code, error) {
	r, err := s.st.ChannelCode(ctx, id)
	if err != nil {
		return nil, err
	}
	return Load(r)
}

// Save creates (id 0) or updates a code by staff member by, then makes or updates its WeCom
// contact way when WeCom is configured. A WeCom failure does not undo the save: it is kept on
// the code (wecom_error) and the next save tries again.
func (s *Service) Save(ctx context.Context, id int64, in *Input, by int64) (*Code, error) {
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		if err := s.validate(ctx, tx, in); err != nil {
			return err
		}
		spec, err := json.Marshal(in.Spec)
		if err != nil {
			return err
		}
		r := &store.ChannelCodeRow{ID: id, Name: in.Name, State: in.State, Channel: in.Channel, Campaign: in.Campaign,
			Source: in.Source, Spec: spec, Status: in.Status, CreatedBy: by}
		if id == 0 {
			if err := tx.CreateChannelCode(r); err != nil {
				return err
			}
			id = r.ID
		} else {
			cur, err := tx.ChannelCode(id)
			if err != nil {
				return err
			}
			if cur.Status == store.ChannelCodeDeleted {
				return store.ErrNotFound
			}
			if err := tx.UpdateChannelCode(r); err != nil {
				return err
			}
			r.LastStaffID = cur.LastStaffID
		}
		current, err := s.next(tx, id, &in.Spec, r.LastStaffID)
		if err != nil {
			return err
		}
		if err := tx.SetChannelCodeReceivers(id, r.LastStaffID, current); err != nil {
			return err
		}
		return tx.SetChannelSource(in.State, in.Source)
	})
	if err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.syncWeCom(ctx, c)
	return s.Get(ctx, id)
}

// syncWeCom makes or updates the code's contact way to point at its current receiver.
func (s *Service) syncWeCom(ctx context.Context, c *Code) {
	if s.WeCom == nil {
		return
	}
	api, err := s.WeCom(ctx)
	if err != nil || api == nil {
		if err != nil {
			s.Log.Warn("channel code: WeCom client", "code", c.ID, "err", err)
		}
		return
	}
	fail := func(err error) {
		s.Log.Warn("channel code: WeCom contact way", "code", c.ID, "err", err)
		if serr := s.st.SetChannelCodeWeCom(ctx, c.ID, c.WeComConfigID, c.WeComQRCode, err.Error()); serr != nil {
			s.Log.Error("channel code: record WeCom failure", "code", c.ID, "err", serr)
		}
	}
	users, err := s.weComUsers(ctx, c.CurrentStaffID)
	if err != nil {
		fail(err)
		return
	}
	remark := truncate(c.Name, 30)
	if c.WeComConfigID != "" {
		if err := api.UpdateContactWay(ctx, c.WeComConfigID, c.State, users, c.Spec.SkipVerify, remark); err != nil {
			fail(err)
			return
		}
		if err := s.st.SetChannelCodeWeCom(ctx, c.ID, c.WeComConfigID, c.WeComQRCode, ""); err != nil {
			s.Log.Error("channel code: record WeCom contact way", "code", c.ID, "err", err)
		}
		return
	}
	configID, qr, err := api.AddContactWay(ctx, c.State, users, c.Spec.SkipVerify, remark)
	if err != nil {
		fail(err)
		return
	}
	if err := s.st.SetChannelCodeWeCom(ctx, c.ID, configID, qr, ""); err != nil {
		s.Log.Error("channel code: record WeCom contact way", "code", c.ID, "err", err)
	}
}

// weComUsers is the WeCom userid of staff member id, as a contact way's user list.
func (s *Service) weComUsers(ctx context.Context, id int64) ([]string, error) {
	if id == 0 {
		return nil, errors.New("no staff member can receive: every receiver is full and there is no fallback")
	}
	ids, err := s.st.WeComUserIDs(ctx)
	if err != nil {
		return nil, err
	}
	for u, sid := range ids {
		if sid == id {
			return []string{u}, nil
		}
	}
	return nil, fmt.Errorf("staff member %d has no WeCom userid linked", id)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// Delete takes a code out of use: its WeCom contact way is deleted, its state keeps
// attributing late adds, its stats stay readable.
func (s *Service) Delete(ctx context.Context, id int64) error {
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if c.Status == store.ChannelCodeDeleted {
		return store.ErrNotFound
	}
	err = s.st.InTx(ctx, func(tx *store.Tx) error {
		r := *c.ChannelCodeRow
		r.Status = store.ChannelCodeDeleted
		return tx.UpdateChannelCode(&r)
	})
	if err != nil {
		return err
	}
	if c.WeComConfigID != "" && s.WeCom != nil {
		if api, err := s.WeCom(ctx); err == nil && api != nil {
			if err := api.DelContactWay(ctx, c.WeComConfigID); err != nil {
				s.Log.Warn("channel code: delete WeCom contact way", "code", id, "err", err)
			}
		}
	}
	return nil
}

// Added is a contact added through a state, as the WeCom worker saw it.
type Added struct {
	Key            string // the callback's inbox key: the add is recorded once per key
	State          string
	CustomerID     int64
	StaffID        int64 // the staff member added (0 when their WeCom userid is not linked)
	ExternalUserID string
	WelcomeCode    string
	At             time.Time
}

// OnAdded applies a code to a contact added through its state, inside the callback's
// transaction: the add is recorded (once per callback: a retried callback changes nothing),
// the code's tags are put on the customer and the turn moves on. An add already on record for
// the same customer and staff member (WeCom's half add, then the full one) is not counted
// again. It returns what must happen once the transaction committed — the welcome message and
// pointing the contact way at the next receiver — or nil. A state that is no code of siyu is
// nothing to do. (Source and owner are applied by the worker, from the state's source and the
// staff member added.)
func (s *Service) OnAdded(tx *store.Tx, a Added) (func(ctx context.Context), error) {
	r, err := tx.ChannelCodeByState(a.State)
	if err != nil || r == nil {
		return nil, err
	}
	c, err := Load(r)
	if err != nil {
		return nil, err
	}
	open, err := tx.OpenChannelAdd(c.ID, a.CustomerID, a.StaffID)
	if err != nil || open {
		return nil, err
	}
	rec := &store.ChannelAdd{CodeID: c.ID, EventKey: a.Key, CustomerID: a.CustomerID, StaffID: a.StaffID,
		ExternalUserID: a.ExternalUserID, Day: s.day(a.At), AddedAt: a.At}
	added, err := tx.RecordChannelAdd(rec)
	if err != nil || !added {
		return nil, err
	}
	tags, err := tx.ExistingTags(c.Spec.TagIDs)
	if err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		cause := tag.Cause{Reason: tag.ReasonWeCom, Ref: fmt.Sprintf("channel_code:%d", c.ID)}
		if _, err := tx.ChangeTags([]int64{a.CustomerID}, tags, nil, cause); err != nil {
			return nil, err
		}
	}
	last := a.StaffID
	if last == 0 {
		last = c.CurrentStaffID
	}
	next, err := s.next(tx, c.ID, &c.Spec, last)
	if err != nil {
		return nil, err
	}
	if err := tx.SetChannelCodeReceivers(c.ID, last, next); err != nil {
		return nil, err
	}
	moved := next != c.CurrentStaffID
	welcome := a.WelcomeCode != "" && (c.Spec.Welcome.Text != "" || len(c.Spec.Welcome.ContentIDs) > 0)
	if !moved && !welcome {
		return nil, nil
	}
	return func(ctx context.Context) {
		if welcome {
			s.sendWelcome(ctx, c, rec, a.WelcomeCode)
		}
		if moved && c.WeComConfigID != "" {
			c.CurrentStaffID = next
			s.syncWeCom(ctx, c)
		}
	}, nil
}

// sendWelcome renders a code's welcome for the customer of add and sends it with WeCom's
// welcome code; the outcome is recorded on the add.
func (s *Service) sendWelcome(ctx context.Context, c *Code, add *store.ChannelAdd, welcomeCode string) {
	outcome := "sent"
	if err := s.welcome(ctx, c, add, welcomeCode); err != nil {
		outcome = "failed: " + err.Error()
		s.Log.Warn("channel code: welcome message", "code", c.ID, "customer", add.CustomerID, "err", err)
	}
	if err := s.st.SetChannelAddWelcome(ctx, add.ID, outcome); err != nil {
		s.Log.Error("channel code: record welcome", "code", c.ID, "err", err)
	}
}

func (s *Service) welcome(ctx context.Context, c *Code, add *store.ChannelAdd, welcomeCode string) error {
	if s.WeCom == nil {
		return errors.New("WeCom is not configured")
	}
	api, err := s.WeCom(ctx)
	if err != nil {
		return err
	}
	if api == nil {
		return errors.New("WeCom is not configured")
	}
	text, atts, err := s.RenderWelcome(ctx, &c.Spec.Welcome, add.CustomerID, add.StaffID)
	if err != nil {
		return err
	}
	// Images and mini-program covers go to WeCom as uploaded media. (WeCom keeps a media_id
	// three days; uploading per welcome keeps this simple at the cost of an upload per add.)
	for i := range atts {
		a := &atts[i]
		if a.ImageID == 0 || (a.Kind != store.ContentImage && a.Kind != store.ContentMiniProgram) {
			continue
		}
		b, err := s.st.ContentBlob(ctx, a.ImageID)
		if err != nil {
			return fmt.Errorf("image %d: %w", a.ImageID, err)
		}
		if a.MediaID, err = api.UploadImage(ctx, fmt.Sprintf("content-%d%s", a.ContentID, imageExt(b.MIME)), b.Data); err != nil {
			return err
		}
	}
	return api.SendWelcomeMsg(ctx, welcomeCode, text, atts)
}

// RenderWelcome renders a welcome for a customer received by staff member staffID: the text
// with the customer's fields and the staff member's name and persona, and the published
// versions of its content items (an item taken out of use since is left out).
func (s *Service) RenderWelcome(ctx context.Context, w *Welcome, customerID, staffID int64) (string, []store.Attachment, error) {
	atts := []store.Attachment{}
	for _, id := range w.ContentIDs {
		v, err := s.st.PublishedContent(ctx, id)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotPublished) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		atts = append(atts, store.AttachmentOf(v))
	}
	if w.Text == "" {
		return "", atts, nil
	}
	c, err := s.st.Customer(ctx, customerID)
	if err != nil {
		return "", nil, err
	}
	var from sop.Sender
	if staffID != 0 {
		if m, err := s.st.StaffByID(ctx, staffID); err == nil {
			from.Name = m.Name
		}
		if p, err := s.st.StaffPersona(ctx, staffID); err == nil && p != nil {
			from.Persona, from.PersonaIntro = p.Name, p.Intro
		}
	}
	keys, err := sop.AttrKeys(ctx, s.st)
	if err != nil {
		return "", nil, err
	}
	text, err := sop.RenderFrom(w.Text, c, from, keys)
	return text, atts, err
}

// OnDeleted records that a customer deleted a staff member (del_follow_user), for the stats
// of the codes they came through.
func (s *Service) OnDeleted(tx *store.Tx, customerID, staffID int64, at time.Time) error {
	_, err := tx.MarkChannelDeleted(customerID, staffID, at)
	return err
}

// Stats is a code's results over the last days days (today included), per day of add.
type Stats struct {
	CodeID   int64                   `json:"code_id"`
	From     string                  `json:"from"`
	To       string                  `json:"to"`
	Adds     int                     `json:"adds"`
	Deletes  int                     `json:"deletes"`
	Buyers   int                     `json:"buyers"`
	GMVMinor int64                   `json:"gmv_minor"`
	Days     []store.ChannelDayStats `json:"days"`
}

// Stats reads a code's results over the last days days.
func (s *Service) Stats(ctx context.Context, id int64, days int) (*Stats, error) {
	if _, err := s.st.ChannelCode(ctx, id); err != nil {
		return nil, err
	}
	now := s.st.Now()
	st := &Stats{CodeID: id, From: s.day(now.AddDate(0, 0, -(days - 1))), To: s.day(now)}
	rows, err := s.st.ChannelCodeStats(ctx, id, st.From, st.To)
	if err != nil {
		return nil, err
	}
	st.Days = rows
	for _, d := range rows {
		st.Adds += d.Adds
		st.Deletes += d.Deletes
		st.Buyers += d.Buyers
		st.GMVMinor += d.GMVMinor
	}
	return st, nil
}

// imageExt is the file extension WeCom's upload wants for an image type.
func imageExt(mime string) string {
	switch mime {
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	}
	return ".jpg"
}
