package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"crypto/sha256"
	"encoding/hex"

	"github.com/siyu-scrm/siyu/internal/content"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The 内容 section of the console: the library (folders, filters, status tabs with the review
// queue), the editor, and an item's page with its workflow buttons, log, versions and usage.

func (s *Server) routesContentConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /content", s.page(s.contentListPage, contentReaders...))
	handle("GET /content/new", s.page(s.contentNewPage, contentEditors...))
	handle("GET /content/personas", s.page(s.personasPage, contentReaders...))
	handle("POST /content/personas", s.page(s.personaSave, contentEditors...))
	handle("POST /content", s.page(s.contentCreate, contentEditors...))
	handle("POST /content/folders", s.page(s.contentFolderCreate, contentEditors...))
	handle("GET /content/{id}", s.page(s.contentItemPage, contentReaders...))
	handle("POST /content/{id}", s.page(s.contentUpdate, contentEditors...))
	handle("POST /content/{id}/move", s.page(s.contentMove, contentEditors...))
	handle("POST /content/{id}/comment", s.page(s.contentComment, contentEditors...))
}

// folderRow is a folder drawn in the tree, indented by depth.
type folderRow struct {
	*store.ContentFolder
	Depth  int
	Indent string
}

// folderTree orders folders depth-first under their parents.
func folderTree(list []*store.ContentFolder) []folderRow {
	children := map[int64][]*store.ContentFolder{}
	for _, f := range list {
		children[f.ParentID] = append(children[f.ParentID], f)
	}
	var out []folderRow
	var walk func(parent int64, depth int)
	walk = func(parent int64, depth int) {
		for _, f := range children[parent] {
			out = append(out, folderRow{ContentFolder: f, Depth: depth, Indent: strings.Repeat("　", depth)})
			if depth < 10 {
				walk(f.ID, depth+1)
			}
		}
	}
	walk(0, 0)
	return out
}

type contentListData struct {
	Folders    []folderRow
	Items      []*store.ContentRow
	Total      int64
	Counts     map[string]int
	Statuses   []string
	Kinds      []string
	AIPL       []string
	Lifecycle  []string
	Folder     string
	Kind       string
	Status     string
	Tag        string
	Q          string
	Prev, Next string
	CanEdit    bool
	Error      string
}

const contentPageSize = 30

func (s *Server) contentListPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := contentListData{Statuses: content.Statuses, Kinds: content.Kinds, AIPL: content.AIPLStages, Lifecycle: content.LifecycleStages, Folder: q.Get("folder"),
		Kind: q.Get("kind"), Status: q.Get("status"), Tag: q.Get("tag"), Q: q.Get("q"), CanEdit: principalFrom(r).Can(contentEditors...)}
	f := store.ContentFilter{Query: d.Q, Limit: contentPageSize}
	if slices.Contains(content.Kinds, d.Kind) {
		f.Kind = d.Kind
	} else {
		d.Kind = ""
	}
	if slices.Contains(content.Statuses, d.Status) || d.Status == "all" {
		f.Status = d.Status
	} else {
		d.Status = ""
	}
	if d.Folder == "none" {
		f.FolderID = -1
	} else if id, err := strconv.ParseInt(d.Folder, 10, 64); err == nil && id > 0 {
		f.FolderID = id
	} else {
		d.Folder = ""
	}
	if kind, value, ok := strings.Cut(d.Tag, ":"); ok && value != "" {
		f.TagKind, f.TagValue = kind, value
	}
	if principalFrom(r).Role == staff.Sales {
		f.Published = true
	}
	offset, _ := strconv.Atoi(q.Get("offset"))
	f.Offset = max(offset, 0)
	page, err := s.Store.ListContents(r.Context(), f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	folders, err := s.Store.ContentFolders(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	counts, err := s.Store.ContentStatusCounts(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Items, d.Total, d.Folders, d.Counts = page.Items, page.Total, folderTree(folders), counts
	link := func(off int) string {
		v := url.Values{}
		for k, x := range map[string]string{"folder": d.Folder, "kind": d.Kind, "status": d.Status, "tag": d.Tag, "q": d.Q} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if off > 0 {
			v.Set("offset", strconv.Itoa(off))
		}
		return "/content?" + v.Encode()
	}
	if f.Offset > 0 {
		d.Prev = link(max(f.Offset-contentPageSize, 0))
	}
	if int64(f.Offset+contentPageSize) < page.Total {
		d.Next = link(f.Offset + contentPageSize)
	}
	d.Error = q.Get("error")
	v := s.newView(w, r, "content", "content.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	v.Data = d
	s.render(w, r, http.StatusOK, "content_list", v)
}

// contentItemData is the item page and the editor.
type contentItemData struct {
	Item      *store.ContentRow
	Form      content.Item
	Attach    map[int64]bool // the attachments ticked
	Pickable  []*store.ContentRow
	Lifecycle string
	AIPLStage string
	Topics    string
	Actions   []string
	CanEdit   bool
	CanReview bool
	Log       []*store.ContentComment
	Versions  []*store.ContentVersion
	Usage     *store.ContentUsage
	Folders   []folderRow
	Kinds     []string
	AIPL      []string
	Staff     map[int64]string
	Error     string
	Field     string
}

func formOf(c *store.ContentRow) (content.Item, map[int64]bool, string, string, string) {
	it := content.Item{FolderID: c.FolderID, Kind: c.Kind, Title: c.Title, Topic: c.Topic, Body: c.Body, Tags: c.Tags}
	var topics []string
	lifecycle, aipl := "", ""
	for _, t := range c.Tags {
		switch t.Kind {
		case content.TagLifecycle:
			lifecycle = t.Value
		case content.TagAIPL:
			aipl = t.Value
		case content.TagTopic:
			topics = append(topics, t.Value)
		}
	}
	return it, idSet(c.Body.Attachments), lifecycle, aipl, strings.Join(topics, ", ")
}

func (s *Server) staffNames(r *http.Request) map[int64]string {
	out := map[int64]string{}
	if list, err := s.Store.ListStaff(r.Context()); err == nil {
		for _, m := range list {
			out[m.ID] = m.Name
		}
	}
	return out
}

func (s *Server) renderContentItem(w http.ResponseWriter, r *http.Request, status int, d *contentItemData) {
	folders, err := s.Store.ContentFolders(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Folders, d.Kinds, d.AIPL, d.Staff = folderTree(folders), content.Kinds, content.AIPLStages, s.staffNames(r)
	if d.Form.Kind == store.ContentText {
		pub, err := s.Store.ListContents(r.Context(), store.ContentFilter{Published: true, Limit: 200})
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, c := range pub.Items {
			if c.Kind != store.ContentText && (d.Item == nil || c.ID != d.Item.ID) {
				d.Pickable = append(d.Pickable, c)
			}
		}
	}
	d.CanEdit = principalFrom(r).Can(contentEditors...)
	title := "content.new"
	v := s.newView(w, r, "content", title)
	if d.Item != nil {
		v.Title = d.Item.Title
		d.Actions = content.Allowed(d.Item.Status)
		me := principalFrom(r).StaffID()
		d.CanReview = me == 0 || me != d.Item.AuthorID
		ctx := r.Context()
		if d.Log, err = s.Store.ContentComments(ctx, d.Item.ID); err == nil {
			if d.Versions, err = s.Store.ContentVersions(ctx, d.Item.ID); err == nil {
				d.Usage, err = s.Store.ContentUsage(ctx, d.Item.ID, 7)
			}
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	v.Crumbs = []crumb{{Label: v.T("content.title"), URL: "/content"}, {Label: v.Title}}
	v.Data = d
	s.render(w, r, status, "content_item", v)
}

func (s *Server) contentNewPage(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	if !slices.Contains(content.Kinds, kind) {
		kind = store.ContentText
	}
	d := &contentItemData{Form: content.Item{Kind: kind}}
	if id, err := strconv.ParseInt(r.URL.Query().Get("folder"), 10, 64); err == nil {
		d.Form.FolderID = id
	}
	s.renderContentItem(w, r, http.StatusOK, d)
}

func (s *Server) contentItemPage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c, err := s.Store.Content(r.Context(), id)
	if err == nil && principalFrom(r).Role == staff.Sales && (c.PublishedVersion == 0 || c.Status == store.ContentArchived) {
		err = store.ErrNotFound
	}
	if s.loadFailed(w, r, err) {
		return
	}
	d := &contentItemData{Item: c}
	d.Form, d.Attach, d.Lifecycle, d.AIPLStage, d.Topics = formOf(c)
	s.renderContentItem(w, r, http.StatusOK, d)
}

// itemFromForm reads the editor's form; an uploaded image is stored first (its id goes in
// the item). A form error names the field.
func (s *Server) itemFromForm(r *http.Request) (*contentItemData, error) {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		r.Body = http.MaxBytesReader(nil, r.Body, maxImageBytes+1<<20)
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			return nil, &customer.FieldError{Field: "file", Reason: "an image is at most 5 MB"}
		}
	}
	fv := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	d := &contentItemData{Lifecycle: fv("lifecycle"), AIPLStage: fv("aipl"), Topics: fv("topics")}
	it := content.Item{Kind: fv("kind"), Title: fv("title"), Topic: fv("topic"), Body: store.ContentBody{
		Text: r.PostFormValue("text"), URL: fv("url"), Description: fv("description"), Cover: fv("cover"), AppID: fv("appid"), Page: fv("page")}}
	it.FolderID, _ = strconv.ParseInt(fv("folder_id"), 10, 64)
	it.Body.ImageID, _ = strconv.ParseInt(fv("image_id"), 10, 64)
	it.Body.Attachments = formIDs(r, "attachment")
	d.Form, d.Attach = it, idSet(it.Body.Attachments)
	if d.Lifecycle != "" {
		d.Form.Tags = append(d.Form.Tags, store.ContentTag{Kind: content.TagLifecycle, Value: d.Lifecycle})
	}
	if d.AIPLStage != "" {
		d.Form.Tags = append(d.Form.Tags, store.ContentTag{Kind: content.TagAIPL, Value: d.AIPLStage})
	}
	for _, t := range strings.FieldsFunc(d.Topics, func(r rune) bool { return r == ',' || r == '，' }) {
		if t = strings.TrimSpace(t); t != "" {
			d.Form.Tags = append(d.Form.Tags, store.ContentTag{Kind: content.TagTopic, Value: t})
		}
	}
	if r.MultipartForm != nil {
		if file, _, err := r.FormFile("file"); err == nil {
			defer file.Close()
			data, err := io.ReadAll(io.LimitReader(file, maxImageBytes+1))
			if err != nil || len(data) > maxImageBytes {
				return d, &customer.FieldError{Field: "file", Reason: "an image is at most 5 MB"}
			}
			mime := http.DetectContentType(data)
			if !slices.Contains(imageTypes, mime) {
				return d, &customer.FieldError{Field: "file", Reason: "want a PNG, JPEG, GIF or WebP image"}
			}
			sum := sha256.Sum256(data)
			b := &store.ContentBlob{SHA256: hex.EncodeToString(sum[:]), MIME: mime, Data: data, CreatedBy: principalFrom(r).StaffID()}
			if err := s.Store.SaveContentBlob(r.Context(), b); err != nil {
				return d, err
			}
			d.Form.Body.ImageID = b.ID
		}
	}
	return d, nil
}

// contentFormError re-renders the editor with the error, or reports false for an error that is
// not the input's.
func (s *Server) contentFormError(w http.ResponseWriter, r *http.Request, d *contentItemData, err error) bool {
	var fe *customer.FieldError
	var te *content.TransitionError
	switch {
	case errors.As(err, &fe):
		d.Error, d.Field = fe.Field+": "+fe.Reason, fe.Field
	case errors.As(err, &te):
		d.Error = te.Error()
	default:
		return false
	}
	s.renderContentItem(w, r, http.StatusUnprocessableEntity, d)
	return true
}

func (s *Server) contentCreate(w http.ResponseWriter, r *http.Request) {
	d, err := s.itemFromForm(r)
	if err == nil {
		var c *store.ContentRow
		if c, err = s.contents().Create(r.Context(), &d.Form, principalFrom(r).StaffID()); err == nil {
			setFlash(w, "success", "content.saved")
			http.Redirect(w, r, "/content/"+strconv.FormatInt(c.ID, 10), http.StatusSeeOther)
			return
		}
	}
	if d == nil {
		d = &contentItemData{}
	}
	if !s.contentFormError(w, r, d, err) {
		s.serverError(w, r, err)
	}
}

func (s *Server) contentUpdate(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	cur, err := s.Store.Content(r.Context(), id)
	if s.loadFailed(w, r, err) {
		return
	}
	d, err := s.itemFromForm(r)
	if d == nil {
		d = &contentItemData{}
	}
	d.Item = cur
	if err == nil {
		d.Form.Kind = cur.Kind
		if _, err = s.contents().Update(r.Context(), id, &d.Form, principalFrom(r).StaffID()); err == nil {
			setFlash(w, "success", "content.saved")
			http.Redirect(w, r, "/content/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
			return
		}
	}
	if !s.contentFormError(w, r, d, err) {
		s.serverError(w, r, err)
	}
}

// contentActionFailed shows item id again with why an action on it failed.
func (s *Server) contentActionFailed(w http.ResponseWriter, r *http.Request, id int64, err error) {
	cur, lerr := s.Store.Content(r.Context(), id)
	if s.loadFailed(w, r, lerr) {
		return
	}
	d := &contentItemData{Item: cur}
	d.Form, d.Attach, d.Lifecycle, d.AIPLStage, d.Topics = formOf(cur)
	if !s.contentFormError(w, r, d, err) {
		s.serverError(w, r, err)
	}
}

func (s *Server) contentMove(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	action := r.PostFormValue("action")
	_, err := s.contents().Move(r.Context(), id, action, principalFrom(r).StaffID(), r.PostFormValue("comment"))
	if err == nil {
		setFlash(w, "success", "content.moved."+action)
		http.Redirect(w, r, "/content/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
		return
	}
	s.contentActionFailed(w, r, id, err)
}

func (s *Server) contentComment(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	_, err := s.contents().Comment(r.Context(), id, principalFrom(r).StaffID(), r.PostFormValue("body"))
	if err == nil {
		http.Redirect(w, r, "/content/"+strconv.FormatInt(id, 10)+"#log", http.StatusSeeOther)
		return
	}
	s.contentActionFailed(w, r, id, err)
}

func (s *Server) contentFolderCreate(w http.ResponseWriter, r *http.Request) {
	parent, _ := strconv.ParseInt(r.PostFormValue("parent_id"), 10, 64)
	f := &store.ContentFolder{Name: r.PostFormValue("name"), ParentID: parent}
	err := s.Store.SaveContentFolder(r.Context(), f)
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		http.Redirect(w, r, "/content?error="+url.QueryEscape(fe.Field+": "+fe.Reason), http.StatusSeeOther)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/content?folder="+strconv.FormatInt(f.ID, 10), http.StatusSeeOther)
}

// personasData is the 人设 page: the personas with their staff, and the editor.
type personasData struct {
	Personas []*store.Persona
	Staff    []*staff.Staff
	Names    map[int64]string
	Edit     *store.Persona
	CanEdit  bool
	Error    string
}

func (s *Server) personasPage(w http.ResponseWriter, r *http.Request) {
	s.renderPersonas(w, r, http.StatusOK, nil, "")
}

func (s *Server) renderPersonas(w http.ResponseWriter, r *http.Request, status int, edit *store.Persona, errMsg string) {
	list, err := s.Store.Personas(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	all, err := s.Store.ListStaff(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := personasData{Personas: list, Names: map[int64]string{}, CanEdit: principalFrom(r).Can(contentEditors...), Error: errMsg, Edit: edit}
	for _, m := range all {
		d.Names[m.ID] = m.Name
		if !m.Disabled {
			d.Staff = append(d.Staff, m)
		}
	}
	if d.Edit == nil {
		d.Edit = &store.Persona{}
		if id, err := strconv.ParseInt(r.URL.Query().Get("edit"), 10, 64); err == nil {
			for _, p := range list {
				if p.ID == id {
					d.Edit = p
				}
			}
		}
	}
	v := s.newView(w, r, "content", "persona.title")
	v.Crumbs = []crumb{{Label: v.T("content.title"), URL: "/content"}, {Label: v.Title}}
	v.Data = d
	s.render(w, r, status, "personas", v)
}

// personaSave creates or updates (id in the form) a persona from the page's form.
func (s *Server) personaSave(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	p := &store.Persona{ID: id, Name: strings.TrimSpace(r.PostFormValue("name")), Title: strings.TrimSpace(r.PostFormValue("title")),
		Intro: strings.TrimSpace(r.PostFormValue("intro")), AvatarURL: strings.TrimSpace(r.PostFormValue("avatar_url")), StaffIDs: []int64{}}
	for _, v := range r.PostForm["staff"] {
		if sid, err := strconv.ParseInt(v, 10, 64); err == nil {
			p.StaffIDs = append(p.StaffIDs, sid)
		}
	}
	err := content.CheckPersona(p)
	if err == nil {
		err = s.Store.SavePersona(r.Context(), p)
	}
	var fe *customer.FieldError
	switch {
	case err == nil:
		setFlash(w, "success", "persona.saved")
		http.Redirect(w, r, "/content/personas", http.StatusSeeOther)
	case errors.As(err, &fe):
		s.renderPersonas(w, r, http.StatusUnprocessableEntity, p, fe.Field+": "+fe.Reason)
	case errors.Is(err, store.ErrNotFound):
		s.renderError(w, r, http.StatusNotFound)
	default:
		s.serverError(w, r, err)
	}
}
