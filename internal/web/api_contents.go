package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The content library over HTTP (internal/content): items with paging and filters, the
// review workflow, comments, versions, usage statistics, folders, image uploads, personas.

// contentEditors write content; everyone signed in reads it (sales copy 话术 from it).
var (
	contentEditors = []staff.Role{staff.Content}
	contentReaders = []staff.Role{staff.Operator, staff.Sales, staff.Content}
)

// Image uploads: stored in the database (one backup holds everything, and every instance on
// one PostgreSQL serves them without a shared disk), at most maxImageBytes, of the types
// browsers and WeCom show.
const maxImageBytes = 5 << 20

var imageTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

func (s *Server) contents() *content.Service { return content.NewService(s.Store) }

// writeContentError maps the library's errors: a workflow step the status does not allow is
// 409, the rest as writeStoreError.
func (s *Server) writeContentError(w http.ResponseWriter, r *http.Request, err error) {
	var te *content.TransitionError
	if errors.As(err, &te) {
		writeError(w, http.StatusConflict, "invalid_transition", te.Error(), "status")
		return
	}
	s.writeStoreError(w, r, err)
}

func (s *Server) apiListContents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := queryInt(w, r, "limit", 50, 1, 200)
	if !ok {
		return
	}
	offset, ok := queryInt(w, r, "offset", 0, 0, 1<<30)
	if !ok {
		return
	}
	f := store.ContentFilter{Kind: q.Get("kind"), Status: q.Get("status"), Query: q.Get("q"), Limit: limit, Offset: offset}
	if f.Kind != "" && !slices.Contains(content.Kinds, f.Kind) {
		writeError(w, http.StatusBadRequest, "invalid", "want one of "+strings.Join(content.Kinds, ", "), "kind")
		return
	}
	if f.Status != "" && f.Status != "all" && !slices.Contains(content.Statuses, f.Status) {
		writeError(w, http.StatusBadRequest, "invalid", "want all or one of "+strings.Join(content.Statuses, ", "), "status")
		return
	}
	switch v := q.Get("folder_id"); v {
	case "":
	case "none":
		f.FolderID = -1
	default:
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, "invalid", "want a folder id or none", "folder_id")
			return
		}
		f.FolderID = id
	}
	if v := q.Get("tag"); v != "" {
		kind, value, ok := strings.Cut(v, ":")
		if !ok || value == "" || (kind != content.TagLifecycle && kind != content.TagAIPL && kind != content.TagTopic) {
			writeError(w, http.StatusBadRequest, "invalid", "want KIND:VALUE, KIND lifecycle, aipl or topic (lifecycle:新客未购)", "tag")
			return
		}
		f.TagKind, f.TagValue = kind, value
	}
	if v := q.Get("published"); v != "" {
		b, ok := queryBool(w, r, "published")
		if !ok {
			return
		}
		f.Published = b
	}
	// Sales see what is in use only: drafts and reviews are the content team's.
	if principalFrom(r).Role == staff.Sales {
		f.Published = true
	}
	page, err := s.Store.ListContents(r.Context(), f)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// contentView is an item as the API shows it: the working version, the actions its status
// allows, and the version in use.
type contentView struct {
	*store.ContentRow
	Actions   []string              `json:"actions"`
	InUse     *store.ContentVersion `json:"in_use,omitempty"`
	ImageURL  string                `json:"image_url,omitempty"`
	CanReview bool                  `json:"can_review"`
}

func (s *Server) contentView(r *http.Request, c *store.ContentRow) (*contentView, error) {
	v := &contentView{ContentRow: c, Actions: content.Allowed(c.Status)}
	if v.Actions == nil {
		v.Actions = []string{}
	}
	if c.PublishedVersion > 0 && c.PublishedVersion != c.Version {
		used, err := s.Store.PublishedContent(r.Context(), c.ID)
		if err != nil && !errors.Is(err, store.ErrNotPublished) {
			return nil, err
		}
		v.InUse = used
	}
	if c.Body.ImageID != 0 {
		v.ImageURL = "/api/v1/content-images/" + strconv.FormatInt(c.Body.ImageID, 10)
	}
	me := principalFrom(r).StaffID()
	v.CanReview = c.Status == store.ContentInReview && (me == 0 || me != c.AuthorID)
	return v, nil
}

// visibleContent reads an item for the request: sales only see items in use.
func (s *Server) visibleContent(w http.ResponseWriter, r *http.Request) (*store.ContentRow, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	c, err := s.Store.Content(r.Context(), id)
	if err == nil && principalFrom(r).Role == staff.Sales && (c.PublishedVersion == 0 || c.Status == store.ContentArchived) {
		err = store.ErrNotFound
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	return c, true
}

func (s *Server) apiGetContent(w http.ResponseWriter, r *http.Request) {
	c, ok := s.visibleContent(w, r)
	if !ok {
		return
	}
	v, err := s.contentView(r, c)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) writeContent(w http.ResponseWriter, r *http.Request, status int, c *store.ContentRow) {
	v, err := s.contentView(r, c)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) apiCreateContent(w http.ResponseWriter, r *http.Request) {
	var it content.Item
	if !decodeJSON(w, r, apiBodyLimit, &it) {
		return
	}
	c, err := s.contents().Create(r.Context(), &it, principalFrom(r).StaffID())
	if err != nil {
		s.writeContentError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/contents/"+strconv.FormatInt(c.ID, 10))
	s.writeContent(w, r, http.StatusCreated, c)
}

func (s *Server) apiUpdateContent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var it content.Item
	if !decodeJSON(w, r, apiBodyLimit, &it) {
		return
	}
	c, err := s.contents().Update(r.Context(), id, &it, principalFrom(r).StaffID())
	if err != nil {
		s.writeContentError(w, r, err)
		return
	}
	s.writeContent(w, r, http.StatusOK, c)
}

// moveContent is the handler of POST /api/v1/contents/{id}/ACTION with an optional
// {"comment": "…"}.
func moveContent(action string) func(*Server, http.ResponseWriter, *http.Request) {
	return func(s *Server, w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		var body struct {
			Comment string `json:"comment"`
		}
		if r.ContentLength != 0 {
			if !decodeJSON(w, r, 64<<10, &body) {
				return
			}
		}
		c, err := s.contents().Move(r.Context(), id, action, principalFrom(r).StaffID(), body.Comment)
		if err != nil {
			s.writeContentError(w, r, err)
			return
		}
		s.writeContent(w, r, http.StatusOK, c)
	}
}

func (s *Server) apiContentComments(w http.ResponseWriter, r *http.Request) {
	c, ok := s.visibleContent(w, r)
	if !ok {
		return
	}
	list, err := s.Store.ContentComments(r.Context(), c.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"comments": list})
}

func (s *Server) apiAddContentComment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var body struct {
		Body string `json:"body"`
	}
	if !decodeJSON(w, r, 64<<10, &body) {
		return
	}
	c, err := s.contents().Comment(r.Context(), id, principalFrom(r).StaffID(), body.Body)
	if err != nil {
		s.writeContentError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) apiContentVersions(w http.ResponseWriter, r *http.Request) {
	c, ok := s.visibleContent(w, r)
	if !ok {
		return
	}
	list, err := s.Store.ContentVersions(r.Context(), c.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": list})
}

func (s *Server) apiContentStats(w http.ResponseWriter, r *http.Request) {
	c, ok := s.visibleContent(w, r)
	if !ok {
		return
	}
	days, ok := queryInt(w, r, "days", 7, 1, 90)
	if !ok {
		return
	}
	u, err := s.Store.ContentUsage(r.Context(), c.ID, days)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

// Folders.

func (s *Server) apiListContentFolders(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.ContentFolders(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"folders": list})
}

type folderBody struct {
	Name     string `json:"name"`
	ParentID int64  `json:"parent_id"`
	Position int    `json:"position"`
}

func (s *Server) saveFolder(w http.ResponseWriter, r *http.Request, id int64) {
	var b folderBody
	if !decodeJSON(w, r, 16<<10, &b) {
		return
	}
	f := &store.ContentFolder{ID: id, Name: b.Name, ParentID: b.ParentID, Position: b.Position}
	if err := s.Store.SaveContentFolder(r.Context(), f); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, f)
}

func (s *Server) apiCreateContentFolder(w http.ResponseWriter, r *http.Request) {
	s.saveFolder(w, r, 0)
}

func (s *Server) apiUpdateContentFolder(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r); ok {
		s.saveFolder(w, r, id)
	}
}

func (s *Server) apiDeleteContentFolder(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteContentFolder(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Images.

// apiUploadContentImage takes the image as the raw request body (Content-Type image/…) or as
// the "file" part of a multipart form, checks its type by its bytes, and stores it.
func (s *Server) apiUploadContentImage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxImageBytes+64<<10)
	var src io.Reader = r.Body
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		file, _, err := r.FormFile("file")
		if err != nil {
			if !bodyTooLarge(w, err) {
				writeError(w, http.StatusBadRequest, "invalid", "want the image in a form part named file", "file")
			}
			return
		}
		defer file.Close()
		src = file
	}
	data, err := io.ReadAll(io.LimitReader(src, maxImageBytes+1))
	if err != nil {
		if !bodyTooLarge(w, err) {
			writeError(w, http.StatusBadRequest, "invalid", err.Error(), "file")
		}
		return
	}
	if len(data) > maxImageBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "an image is at most 5 MB", "file")
		return
	}
	if len(data) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "empty image", "file")
		return
	}
	mime := http.DetectContentType(data)
	if !slices.Contains(imageTypes, mime) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "want a PNG, JPEG, GIF or WebP image (got "+mime+")", "file")
		return
	}
	sum := sha256.Sum256(data)
	b := &store.ContentBlob{SHA256: hex.EncodeToString(sum[:]), MIME: mime, Data: data, CreatedBy: principalFrom(r).StaffID()}
	if err := s.Store.SaveContentBlob(r.Context(), b); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"image_id": b.ID, "mime": b.MIME, "size": b.Size, "sha256": b.SHA256,
		"url": "/api/v1/content-images/" + strconv.FormatInt(b.ID, 10)})
}

// apiContentImage serves an image to a signed-in principal, never as anything but an image.
func (s *Server) apiContentImage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	b, err := s.Store.ContentBlob(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	etag := `"` + b.SHA256 + `"`
	h := w.Header()
	h.Set("Content-Type", b.MIME)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=86400")
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b.Data)))
	w.Write(b.Data)
}

// Personas.

func (s *Server) apiListPersonas(w http.ResponseWriter, r *http.Request) {
	list, err := s.Store.Personas(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"personas": list})
}

func (s *Server) apiGetPersona(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, err := s.Store.Persona(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

type personaBody struct {
	Name      string  `json:"name"`
	Title     string  `json:"title"`
	Intro     string  `json:"intro"`
	AvatarURL string  `json:"avatar_url"`
	StaffIDs  []int64 `json:"staff_ids"`
}

func (s *Server) savePersona(w http.ResponseWriter, r *http.Request, id int64) {
	var b personaBody
	if !decodeJSON(w, r, 64<<10, &b) {
		return
	}
	p := &store.Persona{ID: id, Name: strings.TrimSpace(b.Name), Title: strings.TrimSpace(b.Title), Intro: strings.TrimSpace(b.Intro),
		AvatarURL: strings.TrimSpace(b.AvatarURL), StaffIDs: b.StaffIDs}
	if p.StaffIDs == nil {
		p.StaffIDs = []int64{}
	}
	if err := content.CheckPersona(p); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.Store.SavePersona(r.Context(), p); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusOK
	if id == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, p)
}

func (s *Server) apiCreatePersona(w http.ResponseWriter, r *http.Request) { s.savePersona(w, r, 0) }

func (s *Server) apiUpdatePersona(w http.ResponseWriter, r *http.Request) {
	if id, ok := pathID(w, r); ok {
		s.savePersona(w, r, id)
	}
}

func (s *Server) apiDeletePersona(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeletePersona(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
