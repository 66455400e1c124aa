package sop

import (
	"context"
	"errors"
	"fmt"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Steps that use the content library: a step's content_id picks a published item, whose
// published version gives the text (when the step has none of its own) and the attachments.
// Which version was used is recorded per touch (store.SetTouchContent), and which items each
// SOP version's steps use (store.SetContentRefs), for the item's usage statistics.

// contentOK is Env.ContentOK over the store: only a published item may be picked.
func (s *Service) contentOK(ctx context.Context) func(int64) (bool, error) {
	return func(id int64) (bool, error) {
		v, err := s.st.PublishedContent(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return false, fmt.Errorf("no content %d", id)
		case errors.Is(err, store.ErrNotPublished):
			return false, fmt.Errorf("content %d is not published: only published content may be picked", id)
		case err != nil:
			return false, err
		}
		return v.Kind == store.ContentText || v.Body.Text != "", nil
	}
}

// contentRefs maps the steps of sp that use a content item to the item.
func contentRefs(sp *Spec) map[int]int64 {
	refs := map[int]int64{}
	for i, st := range sp.Steps {
		if st.ContentID > 0 {
			refs[i] = st.ContentID
		}
	}
	return refs
}

// contentUse is the content version a touch was made with.
type contentUse struct {
	ID          int64
	Version     int
	Attachments []store.Attachment
}

// record stores u for a touch in tx; nothing for a step without content.
func (u *contentUse) record(tx *store.Tx, touchID int64) error {
	if u == nil {
		return nil
	}
	return tx.SetTouchContent(touchID, u.ID, u.Version, u.Attachments)
}

// stepMessage renders a step for customer c: the text and, for a step with content, the
// version used. failure says why this customer's touch cannot be made (a template that does
// not fit their data, content no longer published); err is a store failure, to retry.
func (s *Service) stepMessage(ctx context.Context, st Step, c *customer.Customer) (text string, use *contentUse, failure string, err error) {
	from, keys, err := s.renderArgs(ctx, c)
	if err != nil {
		return "", nil, "", err
	}
	tmpl := st.Content
	if st.ContentID > 0 {
		v, err := s.st.PublishedContent(ctx, st.ContentID)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrNotPublished):
			return "", nil, fmt.Sprintf("content %d is no longer published", st.ContentID), nil
		case err != nil:
			return "", nil, "", err
		}
		use = &contentUse{ID: v.ContentID, Version: v.Version, Attachments: []store.Attachment{}}
		if v.Kind != store.ContentText {
			use.Attachments = append(use.Attachments, store.AttachmentOf(v))
		} else if tmpl == "" {
			tmpl = v.Body.Text
		}
		for _, id := range v.Body.Attachments {
			a, err := s.st.PublishedContent(ctx, id)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNotPublished) {
				continue // an attachment taken out of use since is left out, not the message
			}
			if err != nil {
				return "", nil, "", err
			}
			use.Attachments = append(use.Attachments, store.AttachmentOf(a))
		}
	}
	text, err = RenderFrom(tmpl, c, from, keys)
	if err != nil {
		return "", nil, err.Error(), nil
	}
	return text, use, "", nil
}
