package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// The content library as stored: an item (contents) points at its working version
// (contents.version) and at the version in use (published_version, 0 before the first
// publication). Editing a published item adds a version, so the published one stays in use
// until the new one is published. The rules of the workflow live in internal/content; the
// store keeps rows and answers queries.

// Content kinds.
const (
	ContentText        = "text" // 话术: a template in the SOP syntax
	ContentImage       = "image"
	ContentLink        = "link"
	ContentMiniProgram = "miniprogram"
)

// Content statuses: the working version's place in the workflow.
const (
	ContentDraft     = "draft"
	ContentInReview  = "in_review"
	ContentApproved  = "approved"
	ContentPublished = "published"
	ContentArchived  = "archived"
)

// ContentBody is what one version of an item holds, by kind.
type ContentBody struct {
	Text        string  `json:"text,omitempty"` // the 话术 template; a caption for other kinds
	URL         string  `json:"url,omitempty"`  // link
	Description string  `json:"description,omitempty"`
	Cover       string  `json:"cover,omitempty"` // link and mini-program cover image URL
	AppID       string  `json:"appid,omitempty"` // mini-program
	Page        string  `json:"page,omitempty"`  // mini-program page path
	ImageID     int64   `json:"image_id,omitempty"`
	Attachments []int64 `json:"attachments,omitempty"` // other items sent along (a 话术's images, links, cards)
}

// ContentTag tags an item by lifecycle stage, AIPL stage or free topic.
type ContentTag struct {
	Kind  string `json:"kind"` // lifecycle, aipl, topic
	Value string `json:"value"`
}

// ContentRow is an item with its working version.
type ContentRow struct {
	ID               int64        `json:"id"`
	FolderID         int64        `json:"folder_id,omitempty"`
	Kind             string       `json:"kind"`
	Status           string       `json:"status"`
	Title            string       `json:"title"`
	Topic            string       `json:"topic,omitempty"`
	Version          int          `json:"version"`
	PublishedVersion int          `json:"published_version"`
	Body             ContentBody  `json:"body"`
	AuthorID         int64        `json:"author_id,omitempty"` // of the working version
	Tags             []ContentTag `json:"tags"`
	SubmittedBy      int64        `json:"submitted_by,omitempty"`
	SubmittedAt      time.Time    `json:"submitted_at,omitzero"`
	ReviewedBy       int64        `json:"reviewed_by,omitempty"`
	ReviewedAt       time.Time    `json:"reviewed_at,omitzero"`
	PublishedAt      time.Time    `json:"published_at,omitzero"`
	CreatedBy        int64        `json:"created_by,omitempty"`
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
}

// ContentVersion is one saved version of an item.
type ContentVersion struct {
	ContentID int64       `json:"content_id"`
	Kind      string      `json:"kind"`
	Version   int         `json:"version"`
	Title     string      `json:"title"`
	Body      ContentBody `json:"body"`
	AuthorID  int64       `json:"author_id,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// ContentComment is a comment on an item, or the record of a workflow transition with the
// comment made on it.
type ContentComment struct {
	ID        int64     `json:"id"`
	ContentID int64     `json:"content_id"`
	Version   int       `json:"version"`
	StaffID   int64     `json:"staff_id,omitempty"`
	Action    string    `json:"action"` // comment, create, edit, submit, approve, reject, publish, archive
	From      string    `json:"from,omitempty"`
	To        string    `json:"to,omitempty"`
	Body      string    `json:"body,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ContentFolder is a folder of the library's tree.
type ContentFolder struct {
	ID        int64     `json:"id"`
	ParentID  int64     `json:"parent_id,omitempty"`
	Name      string    `json:"name"`
	Position  int       `json:"position"`
	Items     int       `json:"items"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ContentFilter selects items for a list page.
type ContentFilter struct {
	FolderID int64  // 0: any folder; -1: no folder
	Kind     string // "" any
	Status   string // "" any but archived; "all" every status
	TagKind  string // with TagValue: items tagged so
	TagValue string
	Query    string // text search in title, topic and text
	// Published only lists items with a version in use (what the SOP editor may pick).
	Published bool
	Offset    int
	Limit     int
}

// ContentPage is one page of items.
type ContentPage struct {
	Items  []*ContentRow `json:"items"`
	Total  int64         `json:"total"`
	Offset int           `json:"offset"`
	Limit  int           `json:"limit"`
}

// ErrContentConflict is returned when a compare-and-set on an item's status fails: another
// request moved it first.
var ErrContentConflict = errors.New("content: the item changed meanwhile")

const contentCols = `c.id, COALESCE(c.folder_id, 0), c.kind, c.status, c.title, c.topic, c.version, c.published_version, v.body,
	COALESCE(v.author_id, 0), COALESCE(c.submitted_by, 0), COALESCE(c.submitted_at, 0), COALESCE(c.reviewed_by, 0),
	COALESCE(c.reviewed_at, 0), COALESCE(c.published_at, 0), COALESCE(c.created_by, 0), c.created_at, c.updated_at`
const contentFrom = ` FROM contents c JOIN content_versions v ON v.content_id = c.id AND v.version = c.version`

func scanContent(sc interface{ Scan(...any) error }) (*ContentRow, error) {
	var (
		r                                                ContentRow
		body                                             string
		submitted, reviewed, published, created, updated int64
	)
	if err := sc.Scan(&r.ID, &r.FolderID, &r.Kind, &r.Status, &r.Title, &r.Topic, &r.Version, &r.PublishedVersion, &body,
		&r.AuthorID, &r.SubmittedBy, &submitted, &r.ReviewedBy, &reviewed, &published, &r.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.Body); err != nil {
		return nil, fmt.Errorf("content %d body: %w", r.ID, err)
	}
	r.SubmittedAt, r.ReviewedAt, r.PublishedAt = fromMS(submitted), fromMS(reviewed), fromMS(published)
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(updated)
	r.Tags = []ContentTag{}
	return &r, nil
}

// contentSearch is the lower-cased text an item is searched by.
func contentSearch(title, topic string, b ContentBody) string {
	return strings.ToLower(strings.Join([]string{title, topic, b.Text, b.Description, b.URL}, "\n"))
}

// CreateContent stores a new item as version 1, a draft authored by r.CreatedBy, with its
// tags, and logs the creation.
func (tx *Tx) CreateContent(r *ContentRow) error {
	now := tx.Now()
	body, err := json.Marshal(r.Body)
	if err != nil {
		return err
	}
	err = tx.row(`INSERT INTO contents (folder_id, kind, status, title, topic, search, version, published_version, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?) RETURNING id`, nullID(r.FolderID), r.Kind, ContentDraft, r.Title, r.Topic,
		contentSearch(r.Title, r.Topic, r.Body), nullID(r.CreatedBy), ms(now), ms(now)).Scan(&r.ID)
	if err != nil {
		return fmt.Errorf("create content: %w", err)
	}
	if _, err := tx.exec(`INSERT INTO content_versions (content_id, version, title, body, author_id, created_at, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?)`,
		r.ID, r.Title, string(body), nullID(r.CreatedBy), ms(now), ms(now)); err != nil {
		return fmt.Errorf("create content version: %w", err)
	}
	if err := tx.setContentTags(r.ID, r.Tags); err != nil {
		return err
	}
	r.Status, r.Version, r.AuthorID, r.CreatedAt, r.UpdatedAt = ContentDraft, 1, r.CreatedBy, now, now
	return tx.AddContentComment(&ContentComment{ContentID: r.ID, Version: 1, StaffID: r.CreatedBy, Action: "create", To: ContentDraft})
}

// SaveContentDraft writes r's title, topic, folder, body and tags as the working version,
// authored by by. newVersion adds a version (editing a published item); otherwise the
// working version is rewritten in place. The status becomes draft and the review is cleared.
// from is the status the caller saw: a different one now is ErrContentConflict.
func (tx *Tx) SaveContentDraft(r *ContentRow, from string, newVersion bool, by int64) error {
	now := tx.Now()
	body, err := json.Marshal(r.Body)
	if err != nil {
		return err
	}
	version := r.Version
	if newVersion {
		version++
	}
	res, err := tx.exec(`UPDATE contents SET folder_id = ?, status = ?, title = ?, topic = ?, search = ?, version = ?,
		submitted_by = NULL, submitted_at = NULL, reviewed_by = NULL, reviewed_at = NULL, updated_at = ?
		WHERE id = ? AND status = ? AND version = ?`, nullID(r.FolderID), ContentDraft, r.Title, r.Topic,
		contentSearch(r.Title, r.Topic, r.Body), version, ms(now), r.ID, from, r.Version)
	if err != nil {
		return fmt.Errorf("update content %d: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrContentConflict
	}
	if newVersion {
		_, err = tx.exec(`INSERT INTO content_versions (content_id, version, title, body, author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, version, r.Title, string(body), nullID(by), ms(now), ms(now))
	} else {
		_, err = tx.exec(`UPDATE content_versions SET title = ?, body = ?, author_id = ?, updated_at = ? WHERE content_id = ? AND version = ?`,
			r.Title, string(body), nullID(by), ms(now), r.ID, version)
	}
	if err != nil {
		return fmt.Errorf("save content %d version %d: %w", r.ID, version, err)
	}
	if err := tx.setContentTags(r.ID, r.Tags); err != nil {
		return err
	}
	r.Version, r.Status, r.AuthorID, r.UpdatedAt = version, ContentDraft, by, now
	return tx.AddContentComment(&ContentComment{ContentID: r.ID, Version: version, StaffID: by, Action: "edit", From: from, To: ContentDraft})
}

// ContentTransition moves an item from one status to another (compare-and-set on from and the
// working version) and records who did it and the comment.
type ContentTransition struct {
	ID      int64
	Version int
	From    string
	To      string
	Action  string
	By      int64
	Comment string
}

// MoveContent applies t: ErrContentConflict when the item is no longer in t.From at t.Version.
func (tx *Tx) MoveContent(t ContentTransition) error {
	now := ms(tx.Now())
	set := `status = ?, updated_at = ?`
	args := []any{t.To, now}
	switch t.Action {
	case "submit":
		set += `, submitted_by = ?, submitted_at = ?, reviewed_by = NULL, reviewed_at = NULL`
		args = append(args, nullID(t.By), now)
	case "approve", "reject":
		set += `, reviewed_by = ?, reviewed_at = ?`
		args = append(args, nullID(t.By), now)
	case "publish":
		set += `, published_version = version, published_at = ?`
		args = append(args, now)
	}
	args = append(args, t.ID, t.From, t.Version)
	res, err := tx.exec(`UPDATE contents SET `+set+` WHERE id = ? AND status = ? AND version = ?`, args...)
	if err != nil {
		return fmt.Errorf("move content %d to %s: %w", t.ID, t.To, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrContentConflict
	}
	return tx.AddContentComment(&ContentComment{ContentID: t.ID, Version: t.Version, StaffID: t.By, Action: t.Action, From: t.From, To: t.To, Body: t.Comment})
}

// AddContentComment appends a comment (or a transition record) to an item's log.
func (tx *Tx) AddContentComment(c *ContentComment) error {
	c.CreatedAt = tx.Now()
	err := tx.row(`INSERT INTO content_comments (content_id, version, staff_id, action, from_status, to_status, body, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, c.ContentID, c.Version, nullID(c.StaffID), c.Action, c.From, c.To, c.Body, ms(c.CreatedAt)).Scan(&c.ID)
	if err != nil {
		return fmt.Errorf("comment on content %d: %w", c.ContentID, err)
	}
	return nil
}

func (tx *Tx) setContentTags(id int64, tags []ContentTag) error {
	if _, err := tx.exec(`DELETE FROM content_tags WHERE content_id = ?`, id); err != nil {
		return err
	}
	seen := map[ContentTag]bool{}
	for _, t := range tags {
		if seen[t] {
			continue
		}
		seen[t] = true
		if _, err := tx.exec(`INSERT INTO content_tags (content_id, kind, value) VALUES (?, ?, ?)`, id, t.Kind, t.Value); err != nil {
			return fmt.Errorf("tag content %d: %w", id, err)
		}
	}
	return nil
}

// Content reads an item in tx, with its tags.
func (tx *Tx) Content(id int64) (*ContentRow, error) {
	r, err := scanContent(tx.row(`SELECT `+contentCols+contentFrom+` WHERE c.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	tags, err := rowsOf(scanContentTag)(tx.query(`SELECT kind, value FROM content_tags WHERE content_id = ? ORDER BY kind, value`, id))
	if err != nil {
		return nil, err
	}
	r.Tags = tags
	return r, nil
}

func scanContentTag(sc interface{ Scan(...any) error }) (ContentTag, error) {
	var t ContentTag
	return t, sc.Scan(&t.Kind, &t.Value)
}

// Content reads an item with its tags.
func (s *Store) Content(ctx context.Context, id int64) (*ContentRow, error) {
	var r *ContentRow
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		r, err = tx.Content(id)
		return err
	})
	return r, err
}

// ListContents lists items newest first.
func (s *Store) ListContents(ctx context.Context, f ContentFilter) (*ContentPage, error) {
	where := []string{"1 = 1"}
	var args []any
	switch {
	case f.FolderID > 0:
		where, args = append(where, "c.folder_id = ?"), append(args, f.FolderID)
	case f.FolderID < 0:
		where = append(where, "c.folder_id IS NULL")
	}
	if f.Kind != "" {
		where, args = append(where, "c.kind = ?"), append(args, f.Kind)
	}
	switch f.Status {
	case "":
		where = append(where, "c.status <> 'archived'")
	case "all":
	default:
		where, args = append(where, "c.status = ?"), append(args, f.Status)
	}
	if f.Published {
		where = append(where, "c.published_version > 0 AND c.status <> 'archived'")
	}
	if f.TagValue != "" {
		where, args = append(where, "c.id IN (SELECT t.content_id FROM content_tags t WHERE t.kind = ? AND t.value = ?)"), append(args, f.TagKind, f.TagValue)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		where, args = append(where, "c.search LIKE ? ESCAPE '\\'"), append(args, "%"+contentLike(strings.ToLower(q))+"%")
	}
	w := strings.Join(where, " AND ")
	page := &ContentPage{Offset: f.Offset, Limit: f.Limit}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM contents c WHERE `+w), args...).Scan(&page.Total); err != nil {
		return nil, fmt.Errorf("count contents: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+contentCols+contentFrom+` WHERE `+w+` ORDER BY c.updated_at DESC, c.id DESC LIMIT ? OFFSET ?`),
		append(args, f.Limit, f.Offset)...)
	items, err := collect(rows, err, scanContent)
	if err != nil {
		return nil, fmt.Errorf("list contents: %w", err)
	}
	page.Items = items
	if len(items) == 0 {
		return page, nil
	}
	byID := map[int64]*ContentRow{}
	ids := make([]int64, len(items))
	for i, it := range items {
		byID[it.ID], ids[i] = it, it.ID
	}
	trows, err := s.db.QueryContext(ctx, s.q(`SELECT content_id, kind, value FROM content_tags WHERE content_id IN (`+inList(len(ids))+`) ORDER BY kind, value`), idArgs(ids)...)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	for trows.Next() {
		var id int64
		var t ContentTag
		if err := trows.Scan(&id, &t.Kind, &t.Value); err != nil {
			return nil, err
		}
		byID[id].Tags = append(byID[id].Tags, t)
	}
	return page, trows.Err()
}

func scanContentVersion(sc interface{ Scan(...any) error }) (*ContentVersion, error) {
	var (
		v                ContentVersion
		body             string
		created, updated int64
	)
	if err := sc.Scan(&v.ContentID, &v.Kind, &v.Version, &v.Title, &body, &v.AuthorID, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &v.Body); err != nil {
		return nil, fmt.Errorf("content %d version %d: %w", v.ContentID, v.Version, err)
	}
	v.CreatedAt, v.UpdatedAt = fromMS(created), fromMS(updated)
	return &v, nil
}

const contentVersionCols = `v.content_id, c.kind, v.version, v.title, v.body, COALESCE(v.author_id, 0), v.created_at, v.updated_at`

// ContentVersions lists an item's versions, newest first.
func (s *Store) ContentVersions(ctx context.Context, id int64) ([]*ContentVersion, error) {
	return rowsOf(scanContentVersion)(s.db.QueryContext(ctx, s.q(`SELECT `+contentVersionCols+` FROM content_versions v JOIN contents c ON c.id = v.content_id
		WHERE v.content_id = ? ORDER BY v.version DESC`), id))
}

// ErrNotPublished is returned for an item that has no version in use (never published, or
// archived).
var ErrNotPublished = errors.New("content: not published")

// PublishedContent is the version of an item in use: ErrNotFound when there is no such item,
// ErrNotPublished when it was never published or is archived.
func (s *Store) PublishedContent(ctx context.Context, id int64) (*ContentVersion, error) {
	v, err := scanContentVersion(s.db.QueryRowContext(ctx, s.q(`SELECT `+contentVersionCols+` FROM content_versions v
		JOIN contents c ON c.id = v.content_id AND v.version = c.published_version WHERE c.id = ? AND c.status <> 'archived'`), id))
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM contents WHERE id = ?`), id).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrNotFound
		}
		return nil, ErrNotPublished
	}
	return v, err
}

// ContentComments lists an item's log, oldest first.
func (s *Store) ContentComments(ctx context.Context, id int64) ([]*ContentComment, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, content_id, version, COALESCE(staff_id, 0), action, from_status, to_status, body, created_at
		FROM content_comments WHERE content_id = ? ORDER BY id`), id)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (*ContentComment, error) {
		var c ContentComment
		var at int64
		if err := sc.Scan(&c.ID, &c.ContentID, &c.Version, &c.StaffID, &c.Action, &c.From, &c.To, &c.Body, &at); err != nil {
			return nil, err
		}
		c.CreatedAt = fromMS(at)
		return &c, nil
	})
}

// ContentStatusCounts counts items by status (the library's tabs and the review queue badge).
func (s *Store) ContentStatusCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM contents GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// Folders.

// ContentFolders lists every folder with the number of (unarchived) items directly in it,
// by parent then position then name.
func (s *Store) ContentFolders(ctx context.Context) ([]*ContentFolder, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT f.id, COALESCE(f.parent_id, 0), f.name, f.position, f.created_at, f.updated_at,
		(SELECT COUNT(*) FROM contents c WHERE c.folder_id = f.id AND c.status <> 'archived')
		FROM content_folders f ORDER BY COALESCE(f.parent_id, 0), f.position, f.name`)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (*ContentFolder, error) {
		var f ContentFolder
		var created, updated int64
		if err := sc.Scan(&f.ID, &f.ParentID, &f.Name, &f.Position, &created, &updated, &f.Items); err != nil {
			return nil, err
		}
		f.CreatedAt, f.UpdatedAt = fromMS(created), fromMS(updated)
		return &f, nil
	})
}

// maxFolderDepth bounds the folder tree.
const maxFolderDepth = 8

// checkFolderParent refuses a parent that does not exist, that is the folder itself or one
// of its descendants (a cycle), or that would make the tree deeper than maxFolderDepth.
func (tx *Tx) checkFolderParent(id, parent int64) error {
	depth := 1
	for p := parent; p != 0; depth++ {
		if p == id {
			return &customer.FieldError{Field: "parent_id", Reason: "a folder cannot be inside itself"}
		}
		if depth >= maxFolderDepth {
			return &customer.FieldError{Field: "parent_id", Reason: fmt.Sprintf("folders nest at most %d deep", maxFolderDepth)}
		}
		var next sql.NullInt64
		err := tx.row(`SELECT parent_id FROM content_folders WHERE id = ?`, p).Scan(&next)
		if errors.Is(err, sql.ErrNoRows) {
			return &customer.FieldError{Field: "parent_id", Reason: fmt.Sprintf("no folder %d", p)}
		}
		if err != nil {
			return err
		}
		p = next.Int64
	}
	return nil
}

func folderNameErr(err error) error {
	if isUniqueViolation(err) {
		return &customer.FieldError{Field: "name", Reason: "a folder of this name exists in the same parent"}
	}
	return err
}

// SaveContentFolder creates (f.ID 0) or updates a folder.
func (s *Store) SaveContentFolder(ctx context.Context, f *ContentFolder) error {
	f.Name = strings.TrimSpace(f.Name)
	if f.Name == "" || len([]rune(f.Name)) > 60 {
		return &customer.FieldError{Field: "name", Reason: "1 to 60 characters"}
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkFolderParent(f.ID, f.ParentID); err != nil {
			return err
		}
		now := tx.Now()
		if f.ID == 0 {
			err := tx.row(`INSERT INTO content_folders (parent_id, name, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
				nullID(f.ParentID), f.Name, f.Position, ms(now), ms(now)).Scan(&f.ID)
			f.CreatedAt, f.UpdatedAt = now, now
			return folderNameErr(err)
		}
		res, err := tx.exec(`UPDATE content_folders SET parent_id = ?, name = ?, position = ?, updated_at = ? WHERE id = ?`,
			nullID(f.ParentID), f.Name, f.Position, ms(now), f.ID)
		if err != nil {
			return folderNameErr(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		f.UpdatedAt = now
		return nil
	})
}

// DeleteContentFolder deletes an empty folder (no sub-folders, no items, archived ones too).
func (s *Store) DeleteContentFolder(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var sub, items int
		if err := tx.row(`SELECT (SELECT COUNT(*) FROM content_folders WHERE parent_id = ?), (SELECT COUNT(*) FROM contents WHERE folder_id = ?)`, id, id).Scan(&sub, &items); err != nil {
			return err
		}
		if sub > 0 || items > 0 {
			return &customer.FieldError{Field: "id", Reason: fmt.Sprintf("the folder holds %d folders and %d items: move them first", sub, items)}
		}
		res, err := tx.exec(`DELETE FROM content_folders WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// ContentFolderExists reports whether folder id exists, in tx.
func (tx *Tx) ContentFolderExists(id int64) (bool, error) {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM content_folders WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

// Image blobs.

// ContentBlob is an uploaded image.
type ContentBlob struct {
	ID        int64
	SHA256    string
	MIME      string
	Size      int64
	Data      []byte
	CreatedBy int64
	CreatedAt time.Time
}

// SaveContentBlob stores an image and sets b.ID.
func (s *Store) SaveContentBlob(ctx context.Context, b *ContentBlob) error {
	b.CreatedAt = s.now()
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO content_blobs (sha256, mime, size, data, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`),
		b.SHA256, b.MIME, int64(len(b.Data)), b.Data, nullID(b.CreatedBy), ms(b.CreatedAt)).Scan(&b.ID)
	if err != nil {
		return fmt.Errorf("save image: %w", err)
	}
	b.Size = int64(len(b.Data))
	return nil
}

// ContentBlob reads an image.
func (s *Store) ContentBlob(ctx context.Context, id int64) (*ContentBlob, error) {
	var b ContentBlob
	var at int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, sha256, mime, size, data, COALESCE(created_by, 0), created_at FROM content_blobs WHERE id = ?`), id).
		Scan(&b.ID, &b.SHA256, &b.MIME, &b.Size, &b.Data, &b.CreatedBy, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	b.CreatedAt = fromMS(at)
	return &b, err
}

// ContentBlobExists reports whether image id exists, in tx.
func (tx *Tx) ContentBlobExists(id int64) (bool, error) {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM content_blobs WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

// Use by SOPs and touches.

// SetContentRefs records which content items the steps of one SOP version use (step → item).
func (tx *Tx) SetContentRefs(sopID int64, version int, refs map[int]int64) error {
	for step, id := range refs {
		if _, err := tx.exec(`INSERT INTO content_refs (sop_id, version, step, content_id) VALUES (?, ?, ?, ?)
			ON CONFLICT (sop_id, version, step) DO UPDATE SET content_id = excluded.content_id`, sopID, version, step, id); err != nil {
			return fmt.Errorf("content refs of sop %d: %w", sopID, err)
		}
	}
	return nil
}

// Attachment is one content item sent along with a message, as it was when the message was
// made.
type Attachment struct {
	ContentID   int64  `json:"content_id"`
	Version     int    `json:"version"`
	Kind        string `json:"kind"`
	Title       string `json:"title,omitempty"`
	Text        string `json:"text,omitempty"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
	Cover       string `json:"cover,omitempty"`
	AppID       string `json:"appid,omitempty"`
	Page        string `json:"page,omitempty"`
	ImageID     int64  `json:"image_id,omitempty"`
	// MediaID is the WeCom media_id of the image once uploaded for a send (not stored).
	MediaID string `json:"-"`
}

// AttachmentOf is the attachment a content version makes.
func AttachmentOf(v *ContentVersion) Attachment {
	return Attachment{ContentID: v.ContentID, Version: v.Version, Kind: v.Kind, Title: v.Title, Text: v.Body.Text, URL: v.Body.URL,
		Description: v.Body.Description, Cover: v.Body.Cover, AppID: v.Body.AppID, Page: v.Body.Page, ImageID: v.Body.ImageID}
}

// SetTouchContent records the content version and attachments a touch was made with.
func (tx *Tx) SetTouchContent(touchID, contentID int64, version int, atts []Attachment) error {
	if atts == nil {
		atts = []Attachment{}
	}
	b, err := json.Marshal(atts)
	if err != nil {
		return err
	}
	_, err = tx.exec(`INSERT INTO touch_contents (touch_id, content_id, content_version, attachments) VALUES (?, ?, ?, ?)
		ON CONFLICT (touch_id) DO UPDATE SET content_id = excluded.content_id, content_version = excluded.content_version, attachments = excluded.attachments`,
		touchID, contentID, version, string(b))
	return err
}

// TouchAttachments returns the attachments a touch carries (none when it used no content).
func (s *Store) TouchAttachments(ctx context.Context, touchID int64) ([]Attachment, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT attachments FROM touch_contents WHERE touch_id = ?`), touchID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return []Attachment{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Attachment{}
	return out, json.Unmarshal([]byte(raw), &out)
}

// ContentUsage is how an item is used by SOP touches, and what followed.
type ContentUsage struct {
	ContentID int64          `json:"content_id"`
	SOPs      int            `json:"sops"`    // SOPs whose steps use it (any version)
	Touches   map[string]int `json:"touches"` // by state: planned, due, done, sent, …
	// Reached counts the customers a touch using it reached (done or sent).
	Reached int `json:"reached"`
	// Converted counts the reached customers with a paid order within Days days after the
	// touch; GMV sums those orders (minor units, net of refunds).
	Converted int   `json:"converted"`
	GMVMinor  int64 `json:"gmv_minor"`
	Days      int   `json:"days"`
}

// ContentUsage counts the touches of SOP steps using item id, and the conversion of the
// customers they reached within days.
func (s *Store) ContentUsage(ctx context.Context, id int64, days int) (*ContentUsage, error) {
	u := &ContentUsage{ContentID: id, Touches: map[string]int{}, Days: days}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(DISTINCT sop_id) FROM content_refs WHERE content_id = ?`), id).Scan(&u.SOPs); err != nil {
		return nil, err
	}
	const used = ` FROM touches t JOIN content_refs r ON r.sop_id = t.sop_id AND r.version = t.version AND r.step = t.step WHERE r.content_id = ?`
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.state, COUNT(*)`+used+` GROUP BY t.state`), id)
	if err != nil {
		return nil, fmt.Errorf("content usage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		u.Touches[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	window := int64(days) * 24 * int64(time.Hour/time.Millisecond)
	// Per customer, the first touch that reached them; converted when a paid order follows it
	// within the window.
	err = s.db.QueryRowContext(ctx, s.q(`WITH reached AS (
		SELECT t.customer_id, MIN(COALESCE(t.finished_at, t.due_at)) AS at`+used+` AND t.state IN ('done', 'sent') GROUP BY t.customer_id)
		SELECT COUNT(*),
			(SELECT COUNT(DISTINCT o.customer_id) FROM orders o JOIN reached x ON x.customer_id = o.customer_id
				WHERE o.paid_at >= x.at AND o.paid_at < x.at + ?),
			(SELECT COALESCE(SUM(o.amount_minor - o.refunded_minor), 0) FROM orders o JOIN reached x ON x.customer_id = o.customer_id
				WHERE o.paid_at >= x.at AND o.paid_at < x.at + ?)
		FROM reached`), id, window, window).Scan(&u.Reached, &u.Converted, &u.GMVMinor)
	if err != nil {
		return nil, fmt.Errorf("content conversion: %w", err)
	}
	return u, nil
}

// rowsOf is collect for a query call's two results: rowsOf(scan)(tx.query(…)).
func rowsOf[T any](scan func(sc interface{ Scan(...any) error }) (T, error)) func(*sql.Rows, error) ([]T, error) {
	return func(rows *sql.Rows, err error) ([]T, error) { return collect(rows, err, scan) }
}

// contentLike escapes LIKE's wildcards for ESCAPE '\', so a search for "50%" finds "50%".
func contentLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// TouchesAttachments returns the attachments of the touches among ids that carry any, by
// touch id, in one query (a task inbox page).
func (s *Store) TouchesAttachments(ctx context.Context, ids []int64) (map[int64][]Attachment, error) {
	out := map[int64][]Attachment{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT touch_id, attachments FROM touch_contents WHERE touch_id IN (`+inList(len(ids))+`)`), idArgs(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, err
		}
		var atts []Attachment
		if err := json.Unmarshal([]byte(raw), &atts); err != nil {
			return nil, fmt.Errorf("touch %d attachments: %w", id, err)
		}
		if len(atts) > 0 {
			out[id] = atts
		}
	}
	return out, rows.Err()
}
