package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Member tiers, points and price gates (docs/models.md): thin handlers over model and store.

func (s *Server) apiGetTierConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.TierConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) apiPutTierConfig(w http.ResponseWriter, r *http.Request) {
	var cfg model.TierConfig
	if !decodeJSON(w, r, apiBodyLimit, &cfg) {
		return
	}
	cfg.Normalize()
	if err := s.Store.SetTierConfig(r.Context(), cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// apiTierRun answers POST /api/v1/models/tiers/run.
type apiTierRun struct {
	Points *store.PointsRun `json:"points"`
	*model.TierRun
	Tiers []store.TierCount `json:"tiers"`
}

// apiRunTiers brings points up to date (orders, events, expiry), since the balance is an input
// of the tier rules, then recomputes every customer's tier.
func (s *Server) apiRunTiers(w http.ResponseWriter, r *http.Request) {
	out, err := runTiersAndPoints(r.Context(), s.Store)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// runTiersAndPoints runs points, then tiers, with the stored configurations at the store's now.
func runTiersAndPoints(ctx context.Context, st *store.Store) (*apiTierRun, error) {
	pcfg, err := st.PointsConfig(ctx)
	if err != nil {
		return nil, err
	}
	pts, err := st.RunPoints(ctx, pcfg, st.Now())
	if err != nil {
		return nil, err
	}
	tcfg, err := st.TierConfig(ctx)
	if err != nil {
		return nil, err
	}
	run, err := model.RunTiers(ctx, st, tcfg, st.Now())
	if err != nil {
		return nil, err
	}
	counts, err := st.TierCounts(ctx, &tcfg, staff.CustomerScope{})
	if err != nil {
		return nil, err
	}
	return &apiTierRun{Points: pts, TierRun: run, Tiers: counts}, nil
}

// apiPreviewTiers answers what a tier run with the configuration in the body would do now,
// writing nothing (the body is not saved).
func (s *Server) apiPreviewTiers(w http.ResponseWriter, r *http.Request) {
	var cfg model.TierConfig
	if !decodeJSON(w, r, apiBodyLimit, &cfg) {
		return
	}
	cfg.Normalize()
	run, err := model.PreviewTiers(r.Context(), s.Store, cfg, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	tiers := make([]store.TierCount, len(cfg.Tiers))
	for i, t := range cfg.Tiers {
		tiers[i] = store.TierCount{Tier: t.Name, Count: run.Counts[i]}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tiers": tiers, "promoted": run.Promoted, "demoted": run.Demoted, "held": run.Held, "placed": run.Placed})
}

func (s *Server) apiGetTiers(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.TierConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	counts, err := s.Store.TierCounts(r.Context(), &cfg, principalFrom(r).Scope())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tiers": counts})
}

func (s *Server) apiGetPointsConfig(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.PointsConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) apiPutPointsConfig(w http.ResponseWriter, r *http.Request) {
	var cfg model.PointsConfig
	if !decodeJSON(w, r, apiBodyLimit, &cfg) {
		return
	}
	cfg.Normalize()
	if err := s.Store.SetPointsConfig(r.Context(), cfg); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (s *Server) apiRunPoints(w http.ResponseWriter, r *http.Request) {
	cfg, err := s.Store.PointsConfig(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	run, err := s.Store.RunPoints(r.Context(), cfg, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// apiCustomerPoints is the answer of GET /api/v1/customers/{id}/points.
type apiCustomerPoints struct {
	*model.PointsBalance
	Ledger []*model.PointsEntry `json:"ledger"` // newest first
	// NextBefore pages on: pass it as before for the next page (absent on the last page).
	NextBefore int64 `json:"next_before,omitempty"`
}

func (s *Server) apiGetCustomerPoints(w http.ResponseWriter, r *http.Request) {
	for name := range r.URL.Query() {
		if name != "before" && name != "limit" {
			writeError(w, http.StatusBadRequest, "invalid_parameter", "unknown query parameter "+name, name)
			return
		}
	}
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", 50, 1, 500)
	if !ok {
		return
	}
	before, ok := queryInt(w, r, "before", 0, 0, 1<<62)
	if !ok {
		return
	}
	b, err := s.Store.PointsBalance(r.Context(), c.ID, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	ledger, err := s.Store.PointsLedger(r.Context(), c.ID, int64(before), limit+1)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := apiCustomerPoints{PointsBalance: b, Ledger: ledger}
	if len(ledger) > limit {
		out.Ledger = ledger[:limit]
		out.NextBefore = ledger[limit-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// apiPointsChange is the body of POST /api/v1/customers/{id}/points.
type apiPointsChange struct {
	// Action is spend (redeem points; sales may, for their own customers) or adjust (add or,
	// negative, remove points with a reason; operators and admins).
	Action string `json:"action"`
	Points int64  `json:"points"`
	Reason string `json:"reason"`
	// IdempotencyKey makes a retried request write once: the first entry is answered again.
	IdempotencyKey string `json:"idempotency_key"`
}

func (s *Server) apiPostCustomerPoints(w http.ResponseWriter, r *http.Request) {
	c, ok := s.apiCustomer(w, r)
	if !ok {
		return
	}
	var req apiPointsChange
	if !decodeJSON(w, r, apiBodyLimit, &req) {
		return
	}
	p := principalFrom(r)
	var (
		e     *model.PointsEntry
		wrote bool
		err   error
	)
	switch req.Action {
	case "spend":
		e, wrote, err = s.Store.SpendPoints(r.Context(), c.ID, req.Points, req.Reason, req.IdempotencyKey, p.StaffID())
	case "adjust":
		if p.Role != staff.Admin && p.Role != staff.Operator {
			writeError(w, http.StatusForbidden, "forbidden", "only operators and admins adjust points", "action")
			return
		}
		e, wrote, err = s.Store.AdjustPoints(r.Context(), c.ID, req.Points, req.Reason, req.IdempotencyKey, p.StaffID())
	default:
		writeError(w, http.StatusUnprocessableEntity, "invalid", "action must be spend or adjust", "action")
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	b, err := s.Store.PointsBalance(r.Context(), c.ID, s.Store.Now())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !wrote {
		status = http.StatusOK // a retry: the entry written the first time
	}
	if wrote {
		s.Log.Info("points changed", "customer", c.ID, "action", req.Action, "points", e.Delta, "staff", p.StaffID())
	}
	writeJSON(w, status, map[string]any{"entry": e, "balance": b})
}

func (s *Server) apiListGates(w http.ResponseWriter, r *http.Request) {
	gates, err := s.Store.Gates(r.Context())
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"gates": gates})
}

func (s *Server) apiCreateGate(w http.ResponseWriter, r *http.Request) {
	var g model.Gate
	if !decodeJSON(w, r, apiBodyLimit, &g) {
		return
	}
	g.ID, g.CreatedAt, g.UpdatedAt = 0, time.Time{}, time.Time{}
	if err := s.Store.CreateGate(r.Context(), &g, principalFrom(r).StaffID()); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (s *Server) apiGetGate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	g, err := s.Store.Gate(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) apiUpdateGate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var g model.Gate
	if !decodeJSON(w, r, apiBodyLimit, &g) {
		return
	}
	g.ID = id
	if err := s.Store.UpdateGate(r.Context(), &g); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("price gate changed", "gate", id, "staff", principalFrom(r).StaffID())
	writeJSON(w, http.StatusOK, g)
}

func (s *Server) apiDeleteGate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := s.Store.DeleteGate(r.Context(), id); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.Log.Info("price gate deleted", "gate", id, "staff", principalFrom(r).StaffID())
	w.WriteHeader(http.StatusNoContent)
}

// apiGateCheck answers GET /api/v1/gates/{id}/check.
type apiGateCheck struct {
	Gate       *model.Gate `json:"gate"`
	CustomerID int64       `json:"customer_id"`
	Allowed    bool        `json:"allowed"`
	Reason     string      `json:"reason"`
}

func (s *Server) apiCheckGate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	raw := r.URL.Query().Get("customer_id")
	cid, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || cid <= 0 {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "customer_id must be a customer id", "customer_id")
		return
	}
	g, err := s.Store.Gate(r.Context(), id)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	c, err := s.Store.Customer(r.Context(), cid)
	if err == nil && c.MergedInto != 0 {
		err = store.ErrNotFound
	}
	if err == nil && !principalFrom(r).Scope().Allows(c.OwnerID) {
		err = store.ErrNotFound // a sales person checks only their own customers
	}
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such customer", "customer_id")
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	allowed, why, err := s.Store.GateAllows(r.Context(), g.ID, cid)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apiGateCheck{Gate: g, CustomerID: cid, Allowed: allowed, Reason: why})
}

// apiCustomerTier is the tier part of GET /api/v1/customers/{id}/models.
type apiCustomerTier struct {
	Tier      model.Stage        `json:"tier"`
	EnteredAt time.Time          `json:"entered_at"`
	History   []store.StageEntry `json:"history"`
}

// customerTierAndPoints reads a customer's tier (nil before the first tier run) and points.
func (s *Server) customerTierAndPoints(r *http.Request, customerID int64) (*apiCustomerTier, *model.PointsBalance, error) {
	var t *apiCustomerTier
	tier, entered, hist, err := s.Store.CustomerStage(r.Context(), model.TierModel, customerID)
	switch {
	case err == nil:
		t = &apiCustomerTier{Tier: tier, EnteredAt: entered, History: hist}
	case !errors.Is(err, store.ErrNotFound):
		return nil, nil, err
	}
	b, err := s.Store.PointsBalance(r.Context(), customerID, s.Store.Now())
	return t, b, err
}
