package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
)

// The console's 公海 (customer pool): the customers nobody owns, phones and emails masked,
// where each came from, the caller's claim budget for today, and claiming with one click.

func (s *Server) routesOwnershipConsole(handle func(string, http.HandlerFunc)) {
	handle("GET /pool", s.page(s.poolPage, poolUsers...))
	handle("POST /pool/claim", s.page(s.poolClaim, poolUsers...))
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
