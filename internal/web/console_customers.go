package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// homeData is the 工作台.
type homeData struct {
	Stats   *store.WorkbenchStats
	GMV     store.Amount // the largest currency this month (zero when no orders)
	IsAdmin bool
}

// workbenchTTL is how long home page figures are reused: counting every customer and today's
// events is a scan, so many operators opening the home page share one.
const workbenchTTL = 30 * time.Second

type workbenchKey struct {
	st    *store.Store
	scope string // the data scope's owners, "" for every customer
	day   time.Time
}

type workbenchEntry struct {
	at    time.Time
	stats *store.WorkbenchStats
}

var workbenchCache sync.Map // workbenchKey → workbenchEntry

// workbench returns the home page figures for a data scope, in the server's time zone with
// Monday-first weeks.
func (s *Server) workbench(ctx context.Context, scope staff.CustomerScope) (*store.WorkbenchStats, error) {
	now := time.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	key := workbenchKey{s.Store, scopeKey(scope), day}
	if e, ok := workbenchCache.Load(key); ok && now.Sub(e.(workbenchEntry).at) < workbenchTTL {
		return e.(workbenchEntry).stats, nil
	}
	week := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.Local)
	st, err := s.Store.Workbench(ctx, scope, day, week, month)
	if err != nil {
		return nil, err
	}
	workbenchCache.Store(key, workbenchEntry{at: now, stats: st})
	return st, nil
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	st, err := s.workbench(r.Context(), p.Scope())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "home", "home.title")
	d := homeData{Stats: st, IsAdmin: p.Can(staff.Admin)}
	if len(st.GMVThisMonth) > 0 {
		d.GMV = st.GMVThisMonth[0]
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "home", v)
}

// customerListLimit is the page size of the customer list; customerCountCap bounds the count.
const (
	customerListLimit = 50
	customerCountCap  = 10000
)

// customerSorts are the orders the list offers, by URL value.
var customerSorts = []struct {
	Key, Col string
	Desc     bool
}{
	{"newest", "id", true},
	{"oldest", "id", false},
	{"created", "created_at", true},
	{"name", "name", false},
}

// customersData is the customer list.
type customersData struct {
	Q, Source, Owner, Sort string
	Sorts                  []string
	Sources                []string
	Staff                  []*staff.Staff
	OwnerNames             map[int64]string
	Customers              []*customer.Customer
	Count                  int64
	CountMore              bool // more than Count
	Filtered               bool
	NextURL, FirstURL      string
	Paged                  bool // not the first page
	Error                  string
	ShowOwner              bool // a sales role sees only its own customers: no owner column
}

func (s *Server) customersPage(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r)
	q := r.URL.Query()
	v := s.newView(w, r, "customers", "customers.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	d := customersData{Q: strings.TrimSpace(q.Get("q")), Source: q.Get("source"), Owner: q.Get("owner"), Sort: q.Get("sort"), ShowOwner: !p.Scope().Limited || len(p.Scope().Owners) > 1}
	f := store.CustomerFilter{Q: d.Q, Source: d.Source, Scope: p.Scope(), Cursor: q.Get("after"), Limit: customerListLimit}
	for _, so := range customerSorts {
		d.Sorts = append(d.Sorts, so.Key)
		if so.Key == d.Sort {
			f.Sort, f.Desc = so.Col, so.Desc
		}
	}
	if f.Sort == "" {
		d.Sort, f.Sort, f.Desc = "newest", "id", true
	}
	switch d.Owner {
	case "":
	case "none":
		f.OwnerID = -1
	default:
		id, err := strconv.ParseInt(d.Owner, 10, 64)
		if err != nil || id <= 0 {
			d.Owner = ""
		} else {
			f.OwnerID = id
		}
	}
	d.Filtered = d.Q != "" || d.Source != "" || d.Owner != ""
	ctx := r.Context()
	page, err := s.Store.ListCustomers(ctx, f)
	var fe *customer.FieldError
	if errors.As(err, &fe) { // a stale or edited cursor: start again from the first page
		d.Error = v.T("customers.bad_cursor")
		f.Cursor = ""
		page, err = s.Store.ListCustomers(ctx, f)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Customers = page.Customers
	d.Paged = f.Cursor != ""
	if d.Count, err = s.Store.CountCustomersUpTo(ctx, f, customerCountCap); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Count > customerCountCap {
		d.Count, d.CountMore = customerCountCap, true
	}
	if d.Sources, err = s.Store.CustomerSources(ctx, 100); err != nil {
		s.serverError(w, r, err)
		return
	}
	all, err := s.Store.ListStaff(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.OwnerNames = map[int64]string{}
	for _, m := range all {
		d.OwnerNames[m.ID] = m.Name
		if !m.Disabled {
			d.Staff = append(d.Staff, m)
		}
	}
	link := func(after string) string {
		u := url.Values{}
		for k, val := range map[string]string{"q": d.Q, "source": d.Source, "owner": d.Owner, "after": after} {
			if val != "" {
				u.Set(k, val)
			}
		}
		if d.Sort != "newest" {
			u.Set("sort", d.Sort)
		}
		if len(u) == 0 {
			return "/customers"
		}
		return "/customers?" + u.Encode()
	}
	if page.NextCursor != "" {
		d.NextURL = link(page.NextCursor)
	}
	d.FirstURL = link("")
	v.Data = d
	s.render(w, r, http.StatusOK, "customers", v)
}

// attrRow is one custom attribute on the profile page.
type attrRow struct {
	Key, Label string
	Type       customer.AttrType
	Value      any
}

// profileData is the customer profile.
type profileData struct {
	C          *customer.Customer
	Owner      *staff.Staff
	Identities []customer.Identity
	Attrs      []attrRow
	Orders     []*event.Order
	Spent      []store.Amount // net of refunds, per currency
	Events     []*event.Event
	OlderURL   string
	Older      bool // this is not the newest page of the timeline
	Merges     []store.Merge
	Tags       *profileTags // tags with their groups, history, and what can be added
}

const timelineLimit = 30

// customerPage shows one customer. A customer merged away redirects to the one it lives on
// in; a customer outside the viewer's data scope is a 404, as if it did not exist.
func (s *Server) customerPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	c, err := s.Store.Customer(ctx, id)
	for hops := 0; err == nil && c.MergedInto != 0 && hops < 16; hops++ {
		c, err = s.Store.Customer(ctx, c.MergedInto)
	}
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.MergedInto != 0 || !p.Scope().Allows(c.OwnerID))) {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if c.ID != id {
		http.Redirect(w, r, "/customers/"+strconv.FormatInt(c.ID, 10), http.StatusFound)
		return
	}
	d := profileData{C: c}
	tp := store.TimePage{Cursor: r.URL.Query().Get("before"), Limit: timelineLimit}
	d.Older = tp.Cursor != ""
	if c.OwnerID != 0 {
		if d.Owner, err = s.Store.StaffByID(ctx, c.OwnerID); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.serverError(w, r, err)
			return
		}
	}
	defs, err := s.Store.AttrDefs(ctx)
	if err == nil {
		d.Attrs = attrRows(c.Attrs, defs)
		d.Identities, err = s.Store.Identities(ctx, c.ID)
	}
	if err == nil {
		d.Orders, err = s.Store.CustomerOrders(ctx, c.ID, 50)
	}
	if err == nil {
		var page *store.EventPage
		var fe *customer.FieldError
		page, err = s.Store.CustomerEventPage(ctx, c.ID, tp)
		if errors.As(err, &fe) { // a stale or edited cursor: show the newest events
			tp.Cursor, d.Older = "", false
			page, err = s.Store.CustomerEventPage(ctx, c.ID, tp)
		}
		if err == nil {
			d.Events = page.Events
			if page.NextCursor != "" {
				d.OlderURL = "/customers/" + strconv.FormatInt(c.ID, 10) + "?before=" + url.QueryEscape(page.NextCursor) + "#timeline"
			}
		}
	}
	if err == nil {
		d.Merges, err = s.Store.Merges(ctx, c.ID)
	}
	if err == nil {
		d.Tags, err = s.customerTags(r, c.ID)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Spent = spentByCurrency(d.Orders)
	name := c.Name
	v := s.newView(w, r, "customers", "customer.title")
	if name == "" {
		name = v.T("customer.unnamed", c.ID)
	}
	v.Title = name
	v.Crumbs = []crumb{{Label: v.T("customers.title"), URL: "/customers"}, {Label: name}}
	v.Data = d
	s.render(w, r, http.StatusOK, "customer", v)
}

// attrRows lists a customer's attributes with their definitions, in key order.
func attrRows(attrs map[string]any, defs []customer.AttrDef) []attrRow {
	byKey := map[string]customer.AttrDef{}
	for _, d := range defs {
		byKey[d.Key] = d
	}
	rows := make([]attrRow, 0, len(attrs))
	for k, val := range attrs {
		row := attrRow{Key: k, Label: k, Value: val}
		if d, ok := byKey[k]; ok {
			row.Type = d.Type
			if d.Label != "" {
				row.Label = d.Label
			}
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

// spentByCurrency sums orders net of refunds, per currency, largest first.
func spentByCurrency(orders []*event.Order) []store.Amount {
	byCur := map[string]*store.Amount{}
	var out []store.Amount
	for _, o := range orders {
		a := byCur[o.Currency]
		if a == nil {
			a = &store.Amount{Currency: o.Currency}
			byCur[o.Currency] = a
		}
		a.Minor += o.NetMinor()
		a.Orders++
	}
	for _, a := range byCur {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Minor > out[j].Minor })
	return out
}
