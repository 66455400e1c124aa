package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/audit"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/ownership"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Customer ownership over HTTP: owners one by one and in bulk, the pool (公海) and staff
// transfers (离职继承 / 在职继承). The rules live in internal/ownership.

var (
	// ownerAssigners may give customers owners and run transfers.
	ownerAssigners = []staff.Role{staff.Operator}
	// poolUsers may list the pool, claim from it and release their own.
	poolUsers = []staff.Role{staff.Operator, staff.Sales}
)

// ownership returns the ownership service, made on first use when the server was built
// without one (tests).
func (s *Server) ownership() *ownership.Service {
	s.ownershipOnce.Do(func() {
		if s.Ownership == nil {
			s.Ownership = ownership.New(s.Store, s.Log)
		}
	})
	return s.Ownership
}

// apiOwnerChange is one entry of a customer's owner history with the staff named.
type apiOwnerChange struct {
	store.OwnerChange
	From *apiStaffRef `json:"from"`
	To   *apiStaffRef `json:"to"`
	By   *apiStaffRef `json:"by"`
}

// apiOwner is the answer of GET and PUT /api/v1/customers/{id}/owner.
type apiOwner struct {
	CustomerID int64            `json:"customer_id"`
	Owner      *apiStaffRef     `json:"owner"`
	Changed    *bool            `json:"changed,omitempty"`
	History    []apiOwnerChange `json:"history"`
}

// staffRefs names staff members by id for answers, reading each once.
type staffRefs struct {
	s     *Server
	r     *http.Request
	known map[int64]*apiStaffRef
}

func (s *Server) staffRefs(r *http.Request) *staffRefs {
	return &staffRefs{s: s, r: r, known: map[int64]*apiStaffRef{}}
}

func (x *staffRefs) ref(id int64) (*apiStaffRef, error) {
	if id <= 0 {
		return nil, nil
	}
	if ref, ok := x.known[id]; ok {
		return ref, nil
	}
	m, err := x.s.Store.StaffByID(x.r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		x.known[id] = &apiStaffRef{ID: id}
		return x.known[id], nil
	}
	if err != nil {
		return nil, err
	}
	x.known[id] = &apiStaffRef{ID: m.ID, Login: m.Login, Name: m.Name}
	return x.known[id], nil
}

// ownerHistoryLimit is how many changes of owner the owner answers carry.
const ownerHistoryLimit = 50

func (s *Server) ownerAnswer(r *http.Request, id int64) (*apiOwner, error) {
	c, err := s.Store.Customer(r.Context(), id)
	if err != nil {
		return nil, err
	}
	refs := s.staffRefs(r)
	out := &apiOwner{CustomerID: id, History: []apiOwnerChange{}}
	if out.Owner, err = refs.ref(c.OwnerID); err != nil {
		return nil, err
	}
	h, err := s.Store.OwnerHistory(r.Context(), id, ownerHistoryLimit)
	if err != nil {
		return nil, err
	}
	for _, ch := range h {
		e := apiOwnerChange{OwnerChange: ch}
		for _, p := range []struct {
			dst **apiStaffRef
			id  int64
		}{{&e.From, ch.FromID}, {&e.To, ch.ToID}, {&e.By, ch.ByStaff}} {
			if *p.dst, err = refs.ref(p.id); err != nil {
				return nil, err
			}
		}
		out.History = append(out.History, e)
	}
	return out, nil
}

// apiGetOwner answers a customer's owner and owner history (GET /api/v1/customers/{id}/owner).
func (s *Server) apiGetOwner(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	out, err := s.ownerAnswer(r, c.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSetOwnerBody is the body of PUT /api/v1/customers/{id}/owner: owner_id null or 0 puts
// the customer back in the pool.
type apiSetOwnerBody struct {
	OwnerID *int64 `json:"owner_id"`
	Note    string `json:"note"`
}

func (s *Server) apiSetOwner(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	var b apiSetOwnerBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	to := int64(0)
	if b.OwnerID != nil {
		to = *b.OwnerID
	}
	changed, err := s.ownership().Assign(r.Context(), c.ID, to, principalFrom(r).StaffID(), strings.TrimSpace(b.Note))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out, err := s.ownerAnswer(r, c.ID)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out.Changed = &changed
	writeJSON(w, http.StatusOK, out)
}

// apiBulkOwnerBody is the body of POST /api/v1/customers/owner: the customers (ids, a segment
// tree or a saved segment) go to owner_id, or are spread by rule.
type apiBulkOwnerBody struct {
	Customers []int64            `json:"customers"`
	Segment   json.RawMessage    `json:"segment"`
	SegmentID int64              `json:"segment_id"`
	OwnerID   *int64             `json:"owner_id"`
	Rule      []ownership.Target `json:"rule"`
	Note      string             `json:"note"`
}

func (s *Server) apiBulkOwner(w http.ResponseWriter, r *http.Request) {
	var b apiBulkOwnerBody
	if !decodeJSON(w, r, bulkJSONLimit, &b) {
		return
	}
	given := 0
	for _, set := range []bool{b.Customers != nil, len(b.Segment) > 0 && string(b.Segment) != "null", b.SegmentID != 0} {
		if set {
			given++
		}
	}
	if given != 1 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "give exactly one of customers, segment and segment_id", "customers")
		return
	}
	if (b.OwnerID == nil) == (len(b.Rule) == 0) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "give owner_id (0: back to the pool) or a rule, not both", "owner_id")
		return
	}
	ids := b.Customers
	if given == 1 && b.Customers == nil {
		var err error
		if ids, err = s.bulkSegmentMembers(r.Context(), b.Segment, b.SegmentID); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if len(ids) == 0 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "the segment has no members", "segment")
			return
		}
	}
	to := int64(0)
	if b.OwnerID != nil {
		to = *b.OwnerID
	}
	res, err := s.ownership().AssignBulk(r.Context(), ownership.Bulk{Customers: ids, To: to, Rule: b.Rule, By: principalFrom(r).StaffID(), Note: strings.TrimSpace(b.Note)})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	detail := map[string]any{"requested": res.Requested, "changed": res.Changed, "owner_id": to, "rule": b.Rule, "segment_id": b.SegmentID}
	status := http.StatusOK
	if res.TransferID != 0 {
		status = http.StatusAccepted
		detail["transfer_id"] = res.TransferID
		w.Header().Set("Location", "/api/v1/transfers/"+strconv.FormatInt(res.TransferID, 10))
	}
	s.audit(r, audit.OwnerBulkSet, "customers", detail)
	writeJSON(w, status, res)
}

// apiPoolEntry is a customer of the pool: phone and email masked until claimed.
type apiPoolEntry struct {
	ID         int64        `json:"id"`
	Name       string       `json:"name"`
	Gender     string       `json:"gender"`
	Region     string       `json:"region"`
	Source     string       `json:"source"`
	Phone      string       `json:"phone"`
	Email      string       `json:"email"`
	CreatedAt  time.Time    `json:"created_at"`
	LastSeenAt time.Time    `json:"last_seen_at,omitzero"`
	PooledAt   time.Time    `json:"pooled_at,omitzero"`
	LastOwner  *apiStaffRef `json:"last_owner"`
}

// apiPool is the answer of GET /api/v1/pool.
type apiPool struct {
	Customers  []apiPoolEntry `json:"customers"`
	NextCursor string         `json:"next_cursor,omitempty"`
	Total      *int64         `json:"total,omitempty"`
	// Me is the caller's claim budget today.
	Me apiClaimBudget `json:"me"`
}

type apiClaimBudget struct {
	ClaimsToday     int64 `json:"claims_today"`
	DailyClaimLimit int   `json:"daily_claim_limit"`
	Owned           int64 `json:"owned"`
	MaxOwned        int   `json:"max_owned"`
}

var poolParams = map[string]bool{"q": true, "source": true, "sort": true, "order": true, "cursor": true, "limit": true, "count": true}

func (s *Server) apiListPool(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if !poolParams[name] {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	f := store.CustomerFilter{OwnerID: -1, Q: strings.TrimSpace(q.Get("q")), Source: q.Get("source"), Sort: q.Get("sort"), Cursor: q.Get("cursor")}
	if len(f.Q) > 200 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 200 bytes", "q")
		return
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		f.Desc = true
	default:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "order must be asc or desc", "order")
		return
	}
	if !store.ValidSort(f.Sort) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "sort must be id, created_at, last_seen_at or name", "sort")
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 500)
	if !ok {
		return
	}
	f.Limit = limit
	count, ok := queryBool(w, r, "count")
	if !ok {
		return
	}
	if err := store.CheckCustomerCursor(f.Sort, f.Cursor); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	ctx := r.Context()
	page, err := s.Store.ListCustomers(ctx, f)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	ids := make([]int64, len(page.Customers))
	for i, c := range page.Customers {
		ids[i] = c.ID
	}
	entries, err := s.Store.PoolEntries(ctx, ids)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	refs := s.staffRefs(r)
	out := apiPool{Customers: make([]apiPoolEntry, 0, len(page.Customers)), NextCursor: page.NextCursor}
	for _, c := range page.Customers {
		e := apiPoolEntry{ID: c.ID, Name: c.Name, Gender: c.Gender, Region: c.Region, Source: c.Source, Phone: customer.MaskPhone(c.Phone), Email: customer.MaskEmail(c.Email),
			CreatedAt: c.CreatedAt, LastSeenAt: c.LastSeenAt, PooledAt: entries[c.ID].PooledAt}
		if e.LastOwner, err = refs.ref(entries[c.ID].LastOwner); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out.Customers = append(out.Customers, e)
	}
	if count {
		n, err := s.Store.CountCustomers(ctx, f)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out.Total = &n
	}
	if out.Me, err = s.claimBudget(r); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) claimBudget(r *http.Request) (apiClaimBudget, error) {
	svc := s.ownership()
	cfg, err := svc.PoolConfig(r.Context())
	if err != nil {
		return apiClaimBudget{}, err
	}
	me := principalFrom(r).StaffID()
	b := apiClaimBudget{DailyClaimLimit: cfg.DailyClaimLimit, MaxOwned: cfg.MaxOwned}
	if me == 0 {
		return b, nil
	}
	now := s.Store.Now().In(svc.Location)
	y, m, d := now.Date()
	if b.ClaimsToday, err = s.Store.ClaimsSince(r.Context(), me, time.Date(y, m, d, 0, 0, 0, 0, svc.Location)); err != nil {
		return b, err
	}
	owned, err := s.Store.OwnedCounts(r.Context(), []int64{me})
	b.Owned = owned[me]
	return b, err
}

// apiPoolBody is the body of the claim and release routes.
type apiPoolBody struct {
	Customers []int64 `json:"customers"`
	Note      string  `json:"note"`
}

func (s *Server) apiClaim(w http.ResponseWriter, r *http.Request) {
	var b apiPoolBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if len(b.Note) > 500 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 500 bytes", "note")
		return
	}
	me := principalFrom(r).StaffID()
	if me == 0 {
		writeError(w, http.StatusForbidden, "forbidden", "only a staff member can claim customers (this key acts for nobody)", "")
		return
	}
	res, err := s.ownership().Claim(r.Context(), me, b.Customers, strings.TrimSpace(b.Note))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if len(res.Claimed) == 0 {
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":   apiError{Code: "taken", Message: "these customers are no longer in the pool (someone claimed them first)", Field: "customers"},
			"claimed": res.Claimed, "taken": res.Taken})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiRelease(w http.ResponseWriter, r *http.Request) {
	var b apiPoolBody
	if !decodeJSON(w, r, apiBodyLimit, &b) {
		return
	}
	if len(b.Note) > 500 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 500 bytes", "note")
		return
	}
	p := principalFrom(r)
	onlyOwn := int64(0)
	if !p.Can(ownerAssigners...) { // sales give up their own customers only
		if onlyOwn = p.StaffID(); onlyOwn == 0 {
			onlyOwn = -2
		}
	}
	released, unchanged, err := s.ownership().Release(r.Context(), b.Customers, p.StaffID(), onlyOwn, strings.TrimSpace(b.Note))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": released, "unchanged": unchanged})
}

func (s *Server) apiGetPoolConfig(w http.ResponseWriter, r *http.Request) {
	c, err := s.ownership().PoolConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) apiPutPoolConfig(w http.ResponseWriter, r *http.Request) {
	var c ownership.PoolConfig
	if !decodeJSON(w, r, apiBodyLimit, &c) {
		return
	}
	if err := s.ownership().SetPoolConfig(r.Context(), c); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.SettingsChange, "settings:ownership.pool", map[string]any{"daily_claim_limit": c.DailyClaimLimit, "max_owned": c.MaxOwned, "release_after_days": c.ReleaseAfterDays})
	writeJSON(w, http.StatusOK, c)
}

// apiTransferBody is the body of POST /api/v1/transfers.
type apiTransferBody struct {
	Kind        string             `json:"kind"`
	FromStaffID int64              `json:"from_staff_id"`
	Successors  []ownership.Target `json:"successors"`
	Customers   []int64            `json:"customers"`
	GroupChats  []string           `json:"group_chats"`
	Message     string             `json:"message"`
	Note        string             `json:"note"`
}

func (s *Server) apiCreateTransfer(w http.ResponseWriter, r *http.Request) {
	var b apiTransferBody
	if !decodeJSON(w, r, bulkJSONLimit, &b) {
		return
	}
	id, err := s.ownership().CreateTransfer(r.Context(), ownership.TransferRequest{Kind: b.Kind, From: b.FromStaffID, Successors: b.Successors,
		Customers: b.Customers, GroupChats: b.GroupChats, Message: strings.TrimSpace(b.Message), Note: strings.TrimSpace(b.Note), By: principalFrom(r).StaffID()})
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	t, err := s.Store.Transfer(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.audit(r, audit.OwnerTransfer, "transfer:"+strconv.FormatInt(id, 10), map[string]any{"kind": b.Kind, "from_staff_id": b.FromStaffID, "successors": b.Successors, "counts": t.Counts})
	w.Header().Set("Location", "/api/v1/transfers/"+strconv.FormatInt(id, 10))
	writeJSON(w, http.StatusAccepted, t)
}

func (s *Server) apiListTransfers(w http.ResponseWriter, r *http.Request) {
	for name := range r.URL.Query() {
		if name != "limit" && name != "before" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 200)
	if !ok {
		return
	}
	before, ok := queryInt(w, r, "before", 0, 0, 1<<62)
	if !ok {
		return
	}
	ts, err := s.Store.Transfers(r.Context(), int64(before), limit)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"transfers": ts})
}

// apiTransferDetail is a transfer with its items (of one state when asked).
type apiTransferDetail struct {
	*store.Transfer
	Items []store.TransferItem `json:"items"`
}

var itemStates = map[string]bool{store.ItemPending: true, store.ItemFollows: true, store.ItemSubmitting: true, store.ItemWaiting: true,
	store.ItemMoved: true, store.ItemRefused: true, store.ItemFailed: true, store.ItemSkipped: true}

func (s *Server) apiGetTransfer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for name := range q {
		if name != "state" && name != "kind" && name != "limit" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	state, kind := q.Get("state"), q.Get("kind")
	if state != "" && !itemStates[state] {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "state must be one of pending, follows, submitting, waiting, moved, refused, failed, skipped", "state")
		return
	}
	if kind != "" && kind != store.ItemCustomer && kind != store.ItemTask && kind != store.ItemGroup {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "kind must be customer, task or group", "kind")
		return
	}
	limit, ok := queryInt(w, r, "limit", 200, 1, 5000)
	if !ok {
		return
	}
	t, err := s.Store.Transfer(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	items, err := s.Store.TransferItems(r.Context(), id, kind, state, limit)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiTransferDetail{Transfer: t, Items: items})
}
