package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The console's 公海 (customer pool): the customers nobody owns, phones and emails masked,
// where each came from, the caller's claim budget for today, and claiming with one click.

func (s *Server) routesOwnershipConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /pool", s.page(s.poolPage, poolUsers...))
	handle("POST /pool/claim", s.page(s.poolClaim, poolUsers...))
	s.routesTransfersConsole(handle)
}

// poolRow is a customer of the pool as the page shows it.
type poolRow struct {
	apiPoolEntry
	LastOwnerName string
}

type poolData struct {
	Rows              []poolRow
	Q                 string
	Budget            apiClaimBudget
	ClaimsLeft        int // today; -1 when there is no daily limit
	NextURL, FirstURL string
	Paged             bool
}

const poolPageSize = 50

func (s *Server) poolPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := s.newView(w, r, "pool", "pool.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	d := poolData{Q: strings.TrimSpace(q.Get("q")), FirstURL: "/pool", ClaimsLeft: -1}
	if len(d.Q) > 200 {
		d.Q = d.Q[:200]
	}
	f := store.CustomerFilter{OwnerID: -1, Q: d.Q, Sort: "id", Desc: true, Cursor: q.Get("after"), Limit: poolPageSize}
	ctx := r.Context()
	page, err := s.Store.ListCustomers(ctx, f)
	var fe *customer.FieldError
	if errors.As(err, &fe) { // a stale cursor: start again
		f.Cursor = ""
		page, err = s.Store.ListCustomers(ctx, f)
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Paged = f.Cursor != ""
	if page.NextCursor != "" {
		nq := url.Values{"after": {page.NextCursor}}
		if d.Q != "" {
			nq.Set("q", d.Q)
		}
		d.NextURL = "/pool?" + nq.Encode()
	}
	ids := make([]int64, len(page.Customers))
	for i, c := range page.Customers {
		ids[i] = c.ID
	}
	entries, err := s.Store.PoolEntries(ctx, ids)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	refs := s.staffRefs(r)
	for _, c := range page.Customers {
		row := poolRow{apiPoolEntry: apiPoolEntry{ID: c.ID, Name: c.Name, Region: c.Region, Source: c.Source, Phone: customer.MaskPhone(c.Phone),
			CreatedAt: c.CreatedAt, LastSeenAt: c.LastSeenAt, PooledAt: entries[c.ID].PooledAt}}
		ref, err := refs.ref(entries[c.ID].LastOwner)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if ref != nil {
			row.LastOwnerName = ref.Name
		}
		d.Rows = append(d.Rows, row)
	}
	if d.Budget, err = s.claimBudget(r); err != nil {
		s.serverError(w, r, err)
		return
	}
	if d.Budget.DailyClaimLimit > 0 {
		d.ClaimsLeft = max(d.Budget.DailyClaimLimit-int(d.Budget.ClaimsToday), 0)
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "pool", v)
}

// poolClaim claims the customers ticked on the pool page and says how it went.
func (s *Server) poolClaim(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	var ids []int64
	for _, v := range r.PostForm["customer"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			http.Error(w, "bad customer id", http.StatusBadRequest)
			return
		}
		ids = append(ids, id)
	}
	back := "/pool"
	if q := strings.TrimSpace(r.PostFormValue("q")); q != "" {
		back += "?" + url.Values{"q": {q}}.Encode()
	}
	if len(ids) == 0 {
		setFlash(w, "error", "pool.claim_none")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	me := principalFrom(r).StaffID()
	res, err := s.ownership().Claim(r.Context(), me, ids, "")
	var fe *customer.FieldError
	switch {
	case errors.As(err, &fe) && fe.Field == "daily_claim_limit":
		setFlash(w, "error", "pool.claim_daily_limit")
	case errors.As(err, &fe) && fe.Field == "max_owned":
		setFlash(w, "error", "pool.claim_max_owned")
	case errors.As(err, &fe):
		setFlash(w, "error", "pool.claim_too_many")
	case err != nil:
		s.serverError(w, r, err)
		return
	case len(res.Taken) > 0:
		setFlash(w, "success", "pool.claimed_some", strconv.Itoa(len(res.Claimed)), strconv.Itoa(len(res.Taken)))
	default:
		setFlash(w, "success", "pool.claimed", strconv.Itoa(len(res.Claimed)))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// The console's 客户继承 pages: the transfers with their progress, starting a 离职继承 or
// 在职继承, and one transfer's counts and the items that did not move, with why.

func (s *Server) routesTransfersConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /transfers", s.page(s.transfersPage, ownerAssigners...))
	handle("POST /transfers", s.page(s.startTransfer, ownerAssigners...))
	handle("GET /transfers/{id}", s.page(s.transferPage, ownerAssigners...))
}

// transferForm is what the start form holds, kept when it is shown again with an error.
type transferForm struct {
	Kind       string
	From       int64
	Successors map[int64]bool
	Customers  string
	Message    string
	Note       string
}

type transfersData struct {
	Transfers []*store.Transfer
	StaffName map[int64]string
	Staff     []*staffOption
	Form      transferForm
	Error     string
}

type staffOption struct {
	ID   int64
	Name string
}

func (s *Server) transfersPage(w http.ResponseWriter, r *http.Request) {
	s.renderTransfers(w, r, http.StatusOK, transfersData{Form: transferForm{Kind: store.TransferResigned}})
}

func (s *Server) renderTransfers(w http.ResponseWriter, r *http.Request, status int, d transfersData) {
	ctx := r.Context()
	v := s.newView(w, r, "transfers", "transfers.title")
	v.Crumbs = []crumb{{Label: v.Title}}
	var err error
	if d.Transfers, err = s.Store.Transfers(ctx, 0, 50); err != nil {
		s.serverError(w, r, err)
		return
	}
	all, err := s.Store.ListStaff(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.StaffName = map[int64]string{}
	for _, m := range all {
		d.StaffName[m.ID] = m.Name
		if !m.Disabled || m.ID == d.Form.From {
			d.Staff = append(d.Staff, &staffOption{ID: m.ID, Name: m.Name + " (" + m.Login + ")"})
		}
	}
	v.Data = d
	s.render(w, r, status, "transfers", v)
}

func (s *Server) startTransfer(w http.ResponseWriter, r *http.Request) {
	f := transferForm{Kind: r.PostFormValue("kind"), Successors: map[int64]bool{}, Customers: r.PostFormValue("customers"),
		Message: strings.TrimSpace(r.PostFormValue("message")), Note: strings.TrimSpace(r.PostFormValue("note"))}
	f.From, _ = strconv.ParseInt(r.PostFormValue("from"), 10, 64)
	var successors []ownership.Target
	for _, v := range r.PostForm["successor"] {
		if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 && !f.Successors[id] {
			f.Successors[id] = true
			successors = append(successors, ownership.Target{StaffID: id})
		}
	}
	var ids []int64
	for _, part := range strings.FieldsFunc(f.Customers, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id <= 0 {
			v := s.newView(w, r, "transfers", "transfers.title")
			s.renderTransfers(w, r, http.StatusUnprocessableEntity, transfersData{Form: f, Error: v.T("transfers.error.customer_id", part)})
			return
		}
		ids = append(ids, id)
	}
	if f.Kind == store.TransferResigned {
		ids = nil // a 离职继承 takes everything; the box is for 在职继承
	}
	id, err := s.ownership().CreateTransfer(r.Context(), ownership.TransferRequest{Kind: f.Kind, From: f.From, Successors: successors,
		Customers: ids, Message: f.Message, Note: f.Note, By: principalFrom(r).StaffID()})
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		v := s.newView(w, r, "transfers", "transfers.title")
		s.renderTransfers(w, r, http.StatusUnprocessableEntity, transfersData{Form: f, Error: v.T("transfers.error", fe.Field, fe.Reason)})
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.audit(r, audit.OwnerTransfer, "transfer:"+strconv.FormatInt(id, 10), map[string]any{"kind": f.Kind, "from_staff_id": f.From, "successors": successors})
	setFlash(w, "success", "transfers.started")
	http.Redirect(w, r, "/transfers/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

type transferData struct {
	T         *store.Transfer
	StaffName map[int64]string
	Kinds     []string
	States    []string
	Problems  []store.TransferItem
}

func (s *Server) transferPage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	ctx := r.Context()
	t, err := s.Store.Transfer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newView(w, r, "transfers", "transfers.one", id)
	v.Crumbs = []crumb{{Label: v.T("transfers.title"), URL: "/transfers"}, {Label: v.Title}}
	d := transferData{T: t, StaffName: map[int64]string{}, Kinds: []string{store.ItemCustomer, store.ItemTask, store.ItemGroup},
		States: []string{store.ItemPending, store.ItemFollows, store.ItemSubmitting, store.ItemWaiting, store.ItemMoved, store.ItemRefused, store.ItemFailed, store.ItemSkipped}}
	for _, st := range []string{store.ItemRefused, store.ItemFailed, store.ItemSkipped} {
		items, err := s.Store.TransferItems(ctx, id, "", st, 200)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d.Problems = append(d.Problems, items...)
	}
	all, err := s.Store.ListStaff(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, m := range all {
		d.StaffName[m.ID] = m.Name
	}
	v.Data = d
	s.render(w, r, http.StatusOK, "transfer", v)
}
