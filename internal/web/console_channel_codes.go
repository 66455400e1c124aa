package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/channel"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// The 渠道活码 page of the console: the codes with their adds, an editor (receivers with daily
// capacities or a persona, fallback, welcome message, tags) and a code's stats per day drawn
// as an SVG bar chart.

func (s *Server) routesChannelConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /channel-codes", s.page(s.channelCodesPage, channelOperators...))
	handle("GET /channel-codes/new", s.page(s.channelCodeNewPage, channelOperators...))
	handle("POST /channel-codes", s.page(s.channelCodeSave, channelOperators...))
	handle("GET /channel-codes/{id}", s.page(s.channelCodePage, channelOperators...))
	handle("POST /channel-codes/{id}", s.page(s.channelCodeSave, channelOperators...))
	handle("POST /channel-codes/{id}/delete", s.page(s.channelCodeDelete, channelOperators...))
}

type channelCodesData struct {
	Page  *store.ChannelCodePage
	Q     string
	Staff map[int64]string
}

func (s *Server) channelCodesPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	page, err := s.Store.ListChannelCodes(r.Context(), q, max(offset, 0), 50)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "channel_codes", "channel.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	v.Data = channelCodesData{Page: page, Q: q, Staff: s.staffNames(r)}
	s.render(w, r, http.StatusOK, "channel_codes", v)
}

// receiverRow is one line of the receivers editor.
type receiverRow struct {
	StaffID  int64
	DailyCap int
	On       bool
}

// bar is one day of the stats chart.
type bar struct {
	Day           string
	Adds, Deletes int
	X, H, Y, DH   int
	DY            int
}

type channelCodeData struct {
	Code      *channel.Code
	In        channel.Input
	Receivers []receiverRow
	StaffList []*staff.Staff
	Personas  []*store.Persona
	TagGroups []*tag.Group
	Published []*store.ContentRow // what a welcome may carry
	Tags      map[int64]bool      // the code's tags
	Contents  map[int64]bool      // the welcome's content items
	Stats     *channel.Stats
	Bars      []bar
	ChartW    int
	Adds      []*store.ChannelAdd
	Staff     map[int64]string
	Error     string
}

func idSet(ids []int64) map[int64]bool {
	out := map[int64]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// formIDs reads the ids ticked in a form's checkboxes named name.
func formIDs(r *http.Request, name string) []int64 {
	var out []int64
	for _, v := range r.PostForm[name] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
			out = append(out, id)
		}
	}
	return out
}

func (s *Server) renderChannelCode(w http.ResponseWriter, r *http.Request, status int, d *channelCodeData) {
	ctx := r.Context()
	list, err := s.Store.ListStaff(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Personas, err = s.Store.Personas(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.TagGroups, err = s.Store.ListTagGroups(ctx); err != nil {
		s.serverError(w, r, err)
		return
	}
	pub, err := s.Store.ListContents(ctx, store.ContentFilter{Published: true, Limit: 200})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Published = pub.Items
	d.Staff = map[int64]string{}
	caps := map[int64]int{}
	for _, rc := range d.In.Receivers {
		caps[rc.StaffID] = rc.DailyCap
	}
	d.Receivers = nil
	for _, m := range list {
		d.Staff[m.ID] = m.Name
		if m.Disabled {
			continue
		}
		d.StaffList = append(d.StaffList, m)
		c, on := caps[m.ID]
		d.Receivers = append(d.Receivers, receiverRow{StaffID: m.ID, DailyCap: c, On: on})
	}
	v := s.newView(w, r, "channel_codes", "channel.new")
	if d.Code != nil {
		v.Title = d.Code.Name
		if d.Stats, err = s.channels().Stats(ctx, d.Code.ID, 30); err == nil {
			d.Adds, err = s.Store.ChannelAdds(ctx, d.Code.ID, 20)
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d.Bars = statBars(d.Stats.Days)
		d.ChartW = len(d.Bars)*24 + 8
	}
	v.Crumbs = []crumb{{Label: v.T("channel.title"), URL: "/channel-codes"}, {Label: v.Title}}
	v.Data = d
	s.render(w, r, status, "channel_code", v)
}

// statBars lays out the days' adds (and deletes, inside them) as bars 100 px high at most.
func statBars(days []store.ChannelDayStats) []bar {
	top := 1
	for _, d := range days {
		top = max(top, d.Adds)
	}
	out := make([]bar, len(days))
	for i, d := range days {
		h := d.Adds * 100 / top
		dh := d.Deletes * 100 / top
		out[i] = bar{Day: d.Day, Adds: d.Adds, Deletes: d.Deletes, X: i*24 + 4, H: h, Y: 110 - h, DH: dh, DY: 110 - dh}
	}
	return out
}

func (s *Server) channelCodeNewPage(w http.ResponseWriter, r *http.Request) {
	s.renderChannelCode(w, r, http.StatusOK, &channelCodeData{In: channel.Input{Spec: channel.Spec{Mode: channel.ByList}}})
}

func (s *Server) channelCodePage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	c, err := s.channels().Get(r.Context(), id)
	if err == nil && c.Status == store.ChannelCodeDeleted {
		err = store.ErrNotFound
	}
	if s.loadFailed(w, r, err) {
		return
	}
	in := channel.Input{Name: c.Name, State: c.State, Channel: c.Channel, Campaign: c.Campaign, Source: c.Source, Status: c.Status, Spec: c.Spec}
	s.renderChannelCode(w, r, http.StatusOK, &channelCodeData{Code: c, In: in, Tags: idSet(c.Spec.TagIDs), Contents: idSet(c.Spec.Welcome.ContentIDs)})
}

// channelCodeSave creates (POST /channel-codes) or updates (POST /channel-codes/{id}) a code
// from the editor's form.
func (s *Server) channelCodeSave(w http.ResponseWriter, r *http.Request) {
	var id int64
	if p := r.PathValue("id"); p != "" {
		id, _ = strconv.ParseInt(p, 10, 64)
	}
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest)
		return
	}
	fv := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	in := channel.Input{Name: fv("name"), State: fv("state"), Channel: fv("channel"), Campaign: fv("campaign"), Source: fv("source"), Status: fv("status"),
		Spec: channel.Spec{Mode: fv("mode"), Welcome: channel.Welcome{Text: r.PostFormValue("welcome_text")}, SkipVerify: r.PostFormValue("skip_verify") == "on"}}
	in.Spec.FallbackStaffID, _ = strconv.ParseInt(fv("fallback_staff_id"), 10, 64)
	in.Spec.PersonaID, _ = strconv.ParseInt(fv("persona_id"), 10, 64)
	in.Spec.PersonaCap, _ = strconv.Atoi(fv("persona_daily_cap"))
	if in.Spec.Mode == channel.ByPersona {
		in.Spec.Receivers = nil
	} else {
		for _, sid := range r.PostForm["receiver"] {
			id, err := strconv.ParseInt(sid, 10, 64)
			if err != nil {
				continue
			}
			c, _ := strconv.Atoi(fv(fmt.Sprintf("cap_%d", id)))
			in.Spec.Receivers = append(in.Spec.Receivers, channel.Receiver{StaffID: id, DailyCap: c})
		}
		in.Spec.PersonaID = 0
	}
	in.Spec.TagIDs, in.Spec.Welcome.ContentIDs = formIDs(r, "tag"), formIDs(r, "content")
	d := &channelCodeData{In: in, Tags: idSet(in.Spec.TagIDs), Contents: idSet(in.Spec.Welcome.ContentIDs)}
	c, err := s.channels().Save(r.Context(), id, &in, principalFrom(r).StaffID())
	if err == nil {
		setFlash(w, "success", "channel.saved")
		http.Redirect(w, r, "/channel-codes/"+strconv.FormatInt(c.ID, 10), http.StatusSeeOther)
		return
	}
	d.In = in
	if id != 0 {
		if c, gerr := s.channels().Get(r.Context(), id); gerr == nil {
			d.Code = c
		}
	}
	var fe *customer.FieldError
	switch {
	case errors.As(err, &fe):
		d.Error = fe.Field + ": " + fe.Reason
		s.renderChannelCode(w, r, http.StatusUnprocessableEntity, d)
	case errors.Is(err, store.ErrNotFound):
		s.renderError(w, r, http.StatusNotFound)
	default:
		s.serverError(w, r, err)
	}
}

func (s *Server) channelCodeDelete(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err := s.channels().Delete(r.Context(), id); s.loadFailed(w, r, err) {
		return
	}
	setFlash(w, "success", "channel.deleted")
	http.Redirect(w, r, "/channel-codes", http.StatusSeeOther)
}
