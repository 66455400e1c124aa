package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
)

// apiCustomerList is the answer of GET /api/v1/customers.
type apiCustomerList struct {
	Customers  []*customer.Customer `json:"customers"`
	NextCursor string               `json:"next_cursor,omitempty"`
	Total      *int64               `json:"total,omitempty"`
}

// listParams are the query parameters GET /api/v1/customers understands; attr.KEY comes on top.
var listParams = map[string]bool{"q": true, "owner": true, "source": true, "sort": true, "order": true, "cursor": true, "limit": true, "count": true}

func (s *Server) apiListCustomers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.CustomerFilter{
		Scope:  principalFrom(r).Scope(),
		Q:      strings.TrimSpace(q.Get("q")),
		Source: q.Get("source"),
		Sort:   q.Get("sort"),
		Cursor: q.Get("cursor"),
	}
	for name, vals := range q {
		key, isAttr := strings.CutPrefix(name, "attr.")
		switch {
		case isAttr:
			if len(vals) > 1 {
				writeError(w, http.StatusUnprocessableEntity, "invalid", "give each attribute once", name)
				return
			}
			if f.Attrs == nil {
				f.Attrs = map[string]string{}
			}
			f.Attrs[key] = vals[0]
		case !listParams[name]:
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return
		}
	}
	if len(f.Q) > 200 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 200 bytes", "q")
		return
	}
	switch o := q.Get("owner"); o {
	case "":
	case "none":
		f.OwnerID = -1
	default:
		id, err := strconv.ParseInt(o, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "owner must be a staff id or none", "owner")
			return
		}
		f.OwnerID = id
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		f.Desc = true
	default:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "order must be asc or desc", "order")
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 1000)
	if !ok {
		return
	}
	f.Limit = limit
	count, ok := queryBool(w, r, "count")
	if !ok {
		return
	}
	if !store.ValidSort(f.Sort) {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "sort must be id, created_at, last_seen_at or name", "sort")
		return
	}
	if err := store.CheckCustomerCursor(f.Sort, f.Cursor); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	page, err := s.Store.ListCustomers(r.Context(), f)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if err := s.Store.FillOptOuts(r.Context(), page.Customers); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := apiCustomerList{Customers: maskAll(principalFrom(r), page.Customers), NextCursor: page.NextCursor}
	if count {
		n, err := s.Store.CountCustomers(r.Context(), f)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		out.Total = &n
	}
	writeJSON(w, http.StatusOK, out)
}

// apiCustomer loads the customer named by {id} if the principal may see it. A customer outside
// the principal's data scope is 404, as if it did not exist. A customer merged away answers
// 308 Permanent Redirect to the same URL of its survivor, with a JSON body naming it.
func (s *Server) apiCustomer(w http.ResponseWriter, r *http.Request) (*customer.Customer, bool) {
	id, ok := pathID(w, r)
	if !ok {
		return nil, false
	}
	c, err := s.Store.Customer(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return nil, false
	}
	scope := principalFrom(r).Scope()
	if c.MergedInto != 0 {
		survivor, err := s.Store.Customer(r.Context(), c.MergedInto)
		if err != nil {
			s.writeStoreError(w, r, err)
			return nil, false
		}
		if !scope.Allows(survivor.OwnerID) {
			writeError(w, http.StatusNotFound, "not_found", "not found", "")
			return nil, false
		}
		prefix := "/api/v1/customers/" + r.PathValue("id")
		loc := "/api/v1/customers/" + strconv.FormatInt(survivor.ID, 10) + strings.TrimPrefix(r.URL.Path, prefix)
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusPermanentRedirect, apiMerged{
			Error:      apiError{Code: "merged", Message: fmt.Sprintf("customer %d was merged into customer %d", id, survivor.ID)},
			MergedInto: survivor.ID,
		})
		return nil, false
	}
	if !scope.Allows(c.OwnerID) {
		writeError(w, http.StatusNotFound, "not_found", "not found", "")
		return nil, false
	}
	return c, true
}

// apiMerged is the body of the 308 answer about a customer merged away.
type apiMerged struct {
	Error      apiError `json:"error"`
	MergedInto int64    `json:"merged_into"`
}

// apiStaffRef names a staff member inside another resource.
type apiStaffRef struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
	Name  string `json:"name"`
}

// apiAttribute is one attribute value of a customer with its definition.
type apiAttribute struct {
	Key   string            `json:"key"`
	Type  customer.AttrType `json:"type"`
	Label string            `json:"label"`
	Value any               `json:"value"`
}

// apiCustomerDetail is the answer of GET /api/v1/customers/{id}.
type apiCustomerDetail struct {
	*customer.Customer
	Owner            *apiStaffRef        `json:"owner"`
	Identities       []customer.Identity `json:"identities"`
	Attributes       []apiAttribute      `json:"attributes"`
	Merges           []store.Merge       `json:"merges"`
	RecentEvents     []*event.Event      `json:"recent_events"`
	EventsNextCursor string              `json:"events_next_cursor,omitempty"`
	RecentOrders     []*event.Order      `json:"recent_orders"`
	OrdersNextCursor string              `json:"orders_next_cursor,omitempty"`
}

// detailRecent is how many events and orders the detail carries; the rest are a page away.
const detailRecent = 20

func (s *Server) customerDetail(r *http.Request, c *customer.Customer) (*apiCustomerDetail, error) {
	ctx := r.Context()
	d := &apiCustomerDetail{Customer: maskFor(principalFrom(r), c), Attributes: []apiAttribute{}}
	var err error
	if c.OwnerID != 0 {
		m, err := s.Store.StaffByID(ctx, c.OwnerID)
		if err != nil {
			return nil, fmt.Errorf("owner of customer %d: %w", c.ID, err)
		}
		d.Owner = &apiStaffRef{ID: m.ID, Login: m.Login, Name: m.Name}
	}
	if d.Identities, err = s.Store.Identities(ctx, c.ID); err != nil {
		return nil, err
	}
	d.Identities = maskIdentities(principalFrom(r), d.Identities)
	defs, err := s.Store.AttrDefs(ctx)
	if err != nil {
		return nil, err
	}
	for _, def := range defs { // sorted by key
		if v, ok := c.Attrs[def.Key]; ok {
			d.Attributes = append(d.Attributes, apiAttribute{Key: def.Key, Type: def.Type, Label: def.Label, Value: v})
		}
	}
	if d.Merges, err = s.Store.Merges(ctx, c.ID); err != nil {
		return nil, err
	}
	events, err := s.Store.CustomerEventPage(ctx, c.ID, store.TimePage{Limit: detailRecent})
	if err != nil {
		return nil, err
	}
	d.RecentEvents, d.EventsNextCursor = events.Events, events.NextCursor
	orders, err := s.Store.CustomerOrderPage(ctx, c.ID, store.TimePage{Limit: detailRecent})
	if err != nil {
		return nil, err
	}
	d.RecentOrders, d.OrdersNextCursor = orders.Orders, orders.NextCursor
	return d, nil
}

func (s *Server) apiGetCustomer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	s.writeCustomerDetail(w, r, http.StatusOK, c.ID)
}

// writeCustomerDetail re-reads a customer and answers with its detail.
func (s *Server) writeCustomerDetail(w http.ResponseWriter, r *http.Request, status int, id int64) {
	c, err := s.Store.Customer(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	d, err := s.customerDetail(r, c)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, status, d)
}

// timePage reads before, cursor and limit for a customer's events or orders.
func timePage(w http.ResponseWriter, r *http.Request) (store.TimePage, bool) {
	q := r.URL.Query()
	for name := range q {
		if name != "before" && name != "cursor" && name != "limit" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+strconv.Quote(name), name)
			return store.TimePage{}, false
		}
	}
	p := store.TimePage{Cursor: q.Get("cursor")}
	if b := q.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "before must be an RFC 3339 time, e.g. 2025-03-01T12:00:00Z", "before")
			return p, false
		}
		p.BeforeMS = t.UnixMilli()
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 1000)
	p.Limit = limit
	return p, ok
}

func (s *Server) apiCustomerEvents(w http.ResponseWriter, r *http.Request) {
	s.apiCustomerPage(w, r, func(id int64, p store.TimePage) (any, error) {
		return s.Store.CustomerEventPage(r.Context(), id, p)
	})
}

func (s *Server) apiCustomerOrders(w http.ResponseWriter, r *http.Request) {
	s.apiCustomerPage(w, r, func(id int64, p store.TimePage) (any, error) {
		return s.Store.CustomerOrderPage(r.Context(), id, p)
	})
}

// apiCustomerPage answers with one page of the {id} customer's events or orders.
func (s *Server) apiCustomerPage(w http.ResponseWriter, r *http.Request, read func(customerID int64, p store.TimePage) (any, error)) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	p, ok := timePage(w, r)
	if !ok {
		return
	}
	page, err := read(c.ID, p)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// apiCustomerBody is the body of POST /api/v1/customers and PATCH /api/v1/customers/{id}:
// absent (or null) fields stay as they are, "" clears a text field. (One struct, not an
// embedding: decoding errors then name the JSON field alone.)
type apiCustomerBody struct {
	// Identities are given when a customer is created; PATCH refuses them.
	Identities []customer.Identity `json:"identities"`
	Name       *string             `json:"name"`
	Gender     *string             `json:"gender"`
	Birthday   *string             `json:"birthday"`
	Region     *string             `json:"region"`
	Phone      *string             `json:"phone"`
	Email      *string             `json:"email"`
	AvatarURL  *string             `json:"avatar_url"`
	Source     *string             `json:"source"`
	// Owner is the owner's staff login (or email); "" makes the customer unowned.
	Owner *string `json:"owner"`
	// Attrs sets attributes; a null value removes one.
	Attrs map[string]any `json:"attrs"`
	// OptOut sets (true) or clears (false) the opt-out of each channel named.
	OptOut    map[string]bool `json:"opt_out"`
	CreatedAt *time.Time      `json:"created_at"`
}

func (b *apiCustomerBody) patch() *customer.Patch {
	return &customer.Patch{Name: b.Name, Gender: b.Gender, Birthday: b.Birthday, Region: b.Region, Phone: b.Phone,
		Email: b.Email, AvatarURL: b.AvatarURL, Source: b.Source, Owner: b.Owner, Attrs: b.Attrs, OptOut: b.OptOut, CreatedAt: b.CreatedAt}
}

// ownerChangeAllowed refuses owner changes by a role limited to some customers (sales): moving
// customers between staff is a transfer, done by operators and admins.
func ownerChangeAllowed(w http.ResponseWriter, r *http.Request, owner *string) bool {
	if owner != nil && !principalFrom(r).Scope().All() {
		writeError(w, http.StatusForbidden, "forbidden", "the sales role may not change a customer's owner", "owner")
		return false
	}
	return true
}

func (s *Server) apiUpdateCustomer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	var body apiCustomerBody
	if !decodeJSON(w, r, apiBodyLimit, &body) || !ownerChangeAllowed(w, r, body.Owner) {
		return
	}
	if body.Identities != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "identities are not changed by PATCH: they arrive through ingestion (identify, alias)", "identities")
		return
	}
	if err := s.Store.UpdateCustomer(r.Context(), c.ID, body.patch()); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.writeCustomerDetail(w, r, http.StatusOK, c.ID)
}

// errIdentityTaken is a 409 naming the identity that already belongs to a customer.
type errIdentityTaken struct {
	field, message string
}

func (e *errIdentityTaken) Error() string { return e.field + ": " + e.message }

func (s *Server) apiCreateCustomer(w http.ResponseWriter, r *http.Request) {
	var body apiCustomerBody
	if !decodeJSON(w, r, apiBodyLimit, &body) || !ownerChangeAllowed(w, r, body.Owner) {
		return
	}
	p := principalFrom(r)
	if len(body.Identities) == 0 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at least one identity is required", "identities")
		return
	}
	if len(body.Identities) > 50 {
		writeError(w, http.StatusUnprocessableEntity, "invalid", "at most 50 identities", "identities")
		return
	}
	var ids []customer.Identity
	seen := map[customer.Identity]bool{}
	userIDs := 0
	for i, ident := range body.Identities {
		field := fmt.Sprintf("identities[%d]", i)
		if !ident.Kind.Valid() {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "unknown identity kind "+strconv.Quote(string(ident.Kind)), field+".kind")
			return
		}
		ident.Value = strings.TrimSpace(ident.Value)
		if ident.Value == "" || len(ident.Value) > 256 {
			writeError(w, http.StatusUnprocessableEntity, "invalid", "required, at most 256 bytes", field+".value")
			return
		}
		if seen[ident] {
			continue
		}
		seen[ident] = true
		if ident.Kind == customer.UserID {
			if userIDs++; userIDs > 1 {
				writeError(w, http.StatusUnprocessableEntity, "invalid", "a customer has at most one user_id", field)
				return
			}
		}
		ids = append(ids, ident)
	}
	patch := body.patch()
	if !p.Scope().All() { // a sales person's new customers are their own, so they can see them
		if p.StaffID() == 0 {
			writeError(w, http.StatusForbidden, "forbidden", "this sales key belongs to no staff member", "")
			return
		}
		m, err := s.Store.StaffByID(r.Context(), p.StaffID())
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		patch.Owner = &m.Login
	}
	createdAt := time.Time{}
	if patch.CreatedAt != nil {
		createdAt, patch.CreatedAt = *patch.CreatedAt, nil
	}
	var id int64
	err := s.Store.InTx(r.Context(), func(tx *store.Tx) error {
		if err := tx.CheckPatch(patch); err != nil {
			return err
		}
		for i, ident := range ids {
			owner, err := tx.IdentityOwner(ident)
			if err != nil {
				return err
			}
			if owner != 0 {
				msg := fmt.Sprintf("identity %s %q already belongs to a customer", ident.Kind, ident.Value)
				if p.Scope().All() {
					msg = fmt.Sprintf("identity %s %q already belongs to customer %d", ident.Kind, ident.Value, owner)
				}
				return &errIdentityTaken{field: fmt.Sprintf("identities[%d]", i), message: msg}
			}
		}
		var err error
		if id, err = tx.CreateCustomer(ids, createdAt); err != nil {
			return err
		}
		return tx.ApplyPatch(id, patch)
	})
	var taken *errIdentityTaken
	switch {
	case errors.As(err, &taken):
		writeError(w, http.StatusConflict, "conflict", taken.message, taken.field)
		return
	case errors.Is(err, store.ErrConflict): // an identity taken between our check and insert
		writeError(w, http.StatusConflict, "conflict", "an identity already belongs to a customer", "identities")
		return
	case err != nil:
		s.writeStoreError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/customers/"+strconv.FormatInt(id, 10))
	s.writeCustomerDetail(w, r, http.StatusCreated, id)
}
