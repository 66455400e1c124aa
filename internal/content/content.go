// Package content is the content library (内容): 话术 texts written in the SOP template
// syntax, images, links and mini-program cards, kept in folders and tagged by lifecycle
// stage, AIPL stage or topic. Every item goes through the production process — topic,
// production (draft), review (in_review → approved by someone other than its author),
// publish — and only a published version is used by SOPs and welcome messages. Editing a
// published item starts a new draft version; the published version stays in use until the
// new one is published.
package content

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Kinds lists the item kinds.
var Kinds = []string{store.ContentText, store.ContentImage, store.ContentLink, store.ContentMiniProgram}

// Statuses lists the workflow statuses in order.
var Statuses = []string{store.ContentDraft, store.ContentInReview, store.ContentApproved, store.ContentPublished, store.ContentArchived}

// Tag kinds: lifecycle stage (新客未购 … and the key-node stages operators define), AIPL
// stage (a fixed vocabulary) and free topic.
const (
	TagLifecycle = "lifecycle"
	TagAIPL      = "aipl"
	TagTopic     = "topic"
)

// LifecycleStages are the built-in lifecycle stages the console offers (operators may tag with
// the key-node stages they define too).
var LifecycleStages = []string{"新客未购", "新客已购", "老客已购", "老客复购"}

// AIPLStages are the AIPL stages items may be tagged with.
var AIPLStages = []string{"认知", "兴趣", "购买", "忠诚"}

// Limits.
const (
	maxTitle    = 100
	maxTopic    = 200
	maxText     = 4000
	maxDesc     = 500
	maxURL      = 2000
	maxTags     = 20
	maxTagValue = 30
	maxComment  = 2000
	maxAttach   = 9 // WeCom sends at most 9 attachments with a message
)

// Item is what an operator writes: the fields of a create or an edit.
type Item struct {
	FolderID int64              `json:"folder_id,omitempty"`
	Kind     string             `json:"kind"`
	Title    string             `json:"title"`
	Topic    string             `json:"topic,omitempty"`
	Body     store.ContentBody  `json:"body"`
	Tags     []store.ContentTag `json:"tags,omitempty"`
}

func fieldErr(field, format string, args ...any) error {
	return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TransitionError is a workflow step the item's status does not allow (HTTP 409).
type TransitionError struct {
	Action string
	Status string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("cannot %s an item that is %s", e.Action, e.Status)
}

// ErrSelfReview is returned when the author of a version approves or rejects it.
var ErrSelfReview = &customer.FieldError{Field: "reviewer", Reason: "the author of a version cannot review it: another staff member must"}

// Service runs the library over the store.
type Service struct {
	st *store.Store
}

// NewService returns the library over st.
func NewService(st *store.Store) *Service { return &Service{st: st} }

var appIDRE = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

func checkURL(field, v string, required bool) error {
	if v == "" {
		if required {
			return fieldErr(field, "required")
		}
		return nil
	}
	if len(v) > maxURL {
		return fieldErr(field, "at most %d characters", maxURL)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fieldErr(field, "want an http(s) URL")
	}
	return nil
}

// CheckText checks a text field: required or not, valid UTF-8, at most max characters; the
// error is a *customer.FieldError naming field.
func CheckText(field, v string, max int, required bool) error {
	return checkLen(field, v, max, required)
}

func checkLen(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fieldErr(field, "required")
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, "not valid UTF-8")
	}
	if n := utf8.RuneCountInString(v); n > max {
		return fieldErr(field, "at most %d characters (got %d)", max, n)
	}
	return nil
}

// validate checks an item in tx: the fields of its kind, the template of a 话术 (unknown
// fields refused, as in SOP steps), the folder, the image and the attachments (published
// items of the attachment kinds).
func (s *Service) validate(ctx context.Context, tx *store.Tx, it *Item, self int64) error {
	it.Title, it.Topic = strings.TrimSpace(it.Title), strings.TrimSpace(it.Topic)
	if err := checkLen("title", it.Title, maxTitle, true); err != nil {
		return err
	}
	if err := checkLen("topic", it.Topic, maxTopic, false); err != nil {
		return err
	}
	b := &it.Body
	b.URL, b.Cover, b.AppID, b.Page = strings.TrimSpace(b.URL), strings.TrimSpace(b.Cover), strings.TrimSpace(b.AppID), strings.TrimSpace(b.Page)
	if err := checkLen("body.text", b.Text, maxText, it.Kind == store.ContentText); err != nil {
		return err
	}
	if err := checkLen("body.description", b.Description, maxDesc, false); err != nil {
		return err
	}
	if b.Text != "" {
		keys, err := sop.AttrKeys(ctx, s.st)
		if err != nil {
			return err
		}
		if err := sop.CheckTemplate(b.Text, keys); err != nil {
			return fieldErr("body.text", "%v", err)
		}
	}
	if err := checkURL("body.cover", b.Cover, false); err != nil {
		return err
	}
	kindOnly := func(field string, set bool) error {
		if set {
			return fieldErr(field, "not used by a %s item", it.Kind)
		}
		return nil
	}
	switch it.Kind {
	case store.ContentText:
		for _, f := range []struct {
			name string
			set  bool
		}{{"body.url", b.URL != ""}, {"body.appid", b.AppID != ""}, {"body.page", b.Page != ""}, {"body.image_id", b.ImageID != 0}} {
			if err := kindOnly(f.name, f.set); err != nil {
				return err
			}
		}
	case store.ContentImage:
		if b.ImageID <= 0 {
			return fieldErr("body.image_id", "required: upload the image first (POST /api/v1/content-images)")
		}
		ok, err := tx.ContentBlobExists(b.ImageID)
		if err != nil {
			return err
		}
		if !ok {
			return fieldErr("body.image_id", "no image %d", b.ImageID)
		}
		if err := kindOnly("body.url", b.URL != ""); err != nil {
			return err
		}
	case store.ContentLink:
		if err := checkURL("body.url", b.URL, true); err != nil {
			return err
		}
		if err := kindOnly("body.image_id", b.ImageID != 0); err != nil {
			return err
		}
	case store.ContentMiniProgram:
		if !appIDRE.MatchString(b.AppID) {
			return fieldErr("body.appid", "want a mini-program appid (wx and 16 hex digits)")
		}
		if b.Page == "" || len(b.Page) > 500 || strings.ContainsAny(b.Page, " \n\t") {
			return fieldErr("body.page", "want the page path, e.g. pages/index/index.html?id=1")
		}
		if b.Cover == "" && b.ImageID == 0 {
			return fieldErr("body.image_id", "a cover is required: upload it (image_id; WeCom sends cards with an uploaded cover) or give its URL (cover)")
		}
		if b.ImageID != 0 {
			ok, err := tx.ContentBlobExists(b.ImageID)
			if err != nil {
				return err
			}
			if !ok {
				return fieldErr("body.image_id", "no image %d", b.ImageID)
			}
		}
	case "":
		return fieldErr("kind", "required: one of %s", strings.Join(Kinds, ", "))
	default:
		return fieldErr("kind", "want one of %s", strings.Join(Kinds, ", "))
	}
	if len(b.Attachments) > 0 && it.Kind != store.ContentText {
		return fieldErr("body.attachments", "only a 话术 (text) item carries attachments")
	}
	if len(b.Attachments) > maxAttach {
		return fieldErr("body.attachments", "at most %d", maxAttach)
	}
	for i, id := range b.Attachments {
		field := fmt.Sprintf("body.attachments[%d]", i)
		if id == self && self != 0 {
			return fieldErr(field, "an item cannot attach itself")
		}
		if slices.Index(b.Attachments, id) != i {
			return fieldErr(field, "content %d listed twice", id)
		}
		v, err := s.st.PublishedContent(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fieldErr(field, "no content %d", id)
		case errors.Is(err, store.ErrNotPublished):
			return fieldErr(field, "content %d is not published", id)
		case err != nil:
			return err
		}
		if v.Kind == store.ContentText {
			return fieldErr(field, "content %d is a 话术: attach images, links or mini-program cards", id)
		}
	}
	if it.FolderID != 0 {
		ok, err := tx.ContentFolderExists(it.FolderID)
		if err != nil {
			return err
		}
		if !ok {
			return fieldErr("folder_id", "no folder %d", it.FolderID)
		}
	}
	return checkTags(it.Tags)
}

func checkTags(tags []store.ContentTag) error {
	if len(tags) > maxTags {
		return fieldErr("tags", "at most %d", maxTags)
	}
	for i := range tags {
		t := &tags[i]
		t.Value = strings.TrimSpace(t.Value)
		field := fmt.Sprintf("tags[%d]", i)
		switch t.Kind {
		case TagLifecycle, TagTopic:
			// Lifecycle stages include the key-node stages operators define (KOC, 多次复购 …).
			if err := checkLen(field+".value", t.Value, maxTagValue, true); err != nil {
				return err
			}
		case TagAIPL:
			if !slices.Contains(AIPLStages, t.Value) {
				return fieldErr(field+".value", "want an AIPL stage: %s", strings.Join(AIPLStages, ", "))
			}
		default:
			return fieldErr(field+".kind", "want lifecycle, aipl or topic")
		}
	}
	return nil
}

// Create validates and saves a new item, a draft authored by by.
func (s *Service) Create(ctx context.Context, it *Item, by int64) (*store.ContentRow, error) {
	var id int64
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		if err := s.validate(ctx, tx, it, 0); err != nil {
			return err
		}
		r := &store.ContentRow{FolderID: it.FolderID, Kind: it.Kind, Title: it.Title, Topic: it.Topic, Body: it.Body, Tags: it.Tags, CreatedBy: by}
		if err := tx.CreateContent(r); err != nil {
			return err
		}
		id = r.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.st.Content(ctx, id)
}

// Update saves an edit by by. A draft is rewritten in place; an approved item returns to
// draft (its approval no longer holds); a published item gets a new draft version while the
// published one stays in use. An item in review or archived cannot be edited. The kind of
// an item never changes.
func (s *Service) Update(ctx context.Context, id int64, it *Item, by int64) (*store.ContentRow, error) {
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Content(id)
		if err != nil {
			return err
		}
		if it.Kind == "" {
			it.Kind = cur.Kind
		}
		if it.Kind != cur.Kind {
			return fieldErr("kind", "the kind of an item cannot change (it is %s)", cur.Kind)
		}
		switch cur.Status {
		case store.ContentInReview, store.ContentArchived:
			return &TransitionError{Action: "edit", Status: cur.Status}
		}
		if err := s.validate(ctx, tx, it, id); err != nil {
			return err
		}
		r := &store.ContentRow{ID: id, FolderID: it.FolderID, Kind: cur.Kind, Title: it.Title, Topic: it.Topic, Body: it.Body, Tags: it.Tags, Version: cur.Version}
		// A published version stays: the edit is a new version.
		newVersion := cur.Status == store.ContentPublished
		return tx.SaveContentDraft(r, cur.Status, newVersion, by)
	})
	if errors.Is(err, store.ErrContentConflict) {
		return nil, &TransitionError{Action: "edit", Status: "changed meanwhile"}
	}
	if err != nil {
		return nil, err
	}
	return s.st.Content(ctx, id)
}

// Actions of the workflow, with the statuses they move an item from and to.
var transitions = map[string]struct {
	from []string
	to   string
}{
	"submit":  {[]string{store.ContentDraft}, store.ContentInReview},
	"approve": {[]string{store.ContentInReview}, store.ContentApproved},
	"reject":  {[]string{store.ContentInReview, store.ContentApproved}, store.ContentDraft},
	"publish": {[]string{store.ContentApproved}, store.ContentPublished},
	"archive": {[]string{store.ContentDraft, store.ContentInReview, store.ContentApproved, store.ContentPublished}, store.ContentArchived},
}

// Actions lists the workflow actions.
var Actions = []string{"submit", "approve", "reject", "publish", "archive"}

// Allowed lists the actions an item's status allows (for the console's buttons).
func Allowed(status string) []string {
	var out []string
	for _, a := range Actions {
		if slices.Contains(transitions[a].from, status) {
			out = append(out, a)
		}
	}
	return out
}

// Move applies a workflow action by staff member by with a comment (required to reject):
// submit (draft → in_review), approve (in_review → approved, by someone other than the
// version's author), reject (back to draft), publish (approved → published: this version is
// now the one in use), archive (out of use). A status that does not allow the action is a
// *TransitionError; another request moving the item first is one too.
func (s *Service) Move(ctx context.Context, id int64, action string, by int64, comment string) (*store.ContentRow, error) {
	tr, ok := transitions[action]
	if !ok {
		return nil, fieldErr("action", "want one of %s", strings.Join(Actions, ", "))
	}
	comment = strings.TrimSpace(comment)
	if err := checkLen("comment", comment, maxComment, action == "reject"); err != nil {
		return nil, err
	}
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Content(id)
		if err != nil {
			return err
		}
		if !slices.Contains(tr.from, cur.Status) {
			return &TransitionError{Action: action, Status: cur.Status}
		}
		if (action == "approve" || action == "reject") && by != 0 && by == cur.AuthorID {
			return ErrSelfReview
		}
		return tx.MoveContent(store.ContentTransition{ID: id, Version: cur.Version, From: cur.Status, To: tr.to, Action: action, By: by, Comment: comment})
	})
	if errors.Is(err, store.ErrContentConflict) {
		return nil, &TransitionError{Action: action, Status: "changed meanwhile"}
	}
	if err != nil {
		return nil, err
	}
	return s.st.Content(ctx, id)
}

// Comment adds a comment by by on the item's working version.
func (s *Service) Comment(ctx context.Context, id, by int64, body string) (*store.ContentComment, error) {
	body = strings.TrimSpace(body)
	if err := checkLen("body", body, maxComment, true); err != nil {
		return nil, err
	}
	var c *store.ContentComment
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Content(id)
		if err != nil {
			return err
		}
		c = &store.ContentComment{ContentID: id, Version: cur.Version, StaffID: by, Action: "comment", Body: body}
		return tx.AddContentComment(c)
	})
	return c, err
}
