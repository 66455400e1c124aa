package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Member tiers (internal/model tier.go) are stages of the model "tier" in customer_stages, so
// ApplyStages keeps their history and emits their events; this file reads the tier rules'
// inputs and keeps the ladder's configuration and the price gates.

const tierConfigKey = "model.tier.config"

// TierConfig reads the tier ladder, or the default when none was saved.
func (s *Store) TierConfig(ctx context.Context) (model.TierConfig, error) {
	cfg := model.DefaultTierConfig()
	return cfg, s.jsonSetting(ctx, tierConfigKey, &cfg)
}

// SetTierConfig validates and saves the tier ladder. A ladder that drops a tier a price gate
// requires is refused naming tiers: the gate would silently change meaning.
func (s *Store) SetTierConfig(ctx context.Context, cfg model.TierConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	gates, err := s.Gates(ctx)
	if err != nil {
		return err
	}
	for _, g := range gates {
		if g.Tier != "" && cfg.Index(g.Tier) < 0 {
			return &customer.FieldError{Field: "tiers", Reason: fmt.Sprintf("price gate %q requires tier %q: change the gate first", g.Name, g.Tier)}
		}
	}
	return s.setJSONSetting(ctx, tierConfigKey, cfg)
}

// modelEventNames are events siyu writes itself about model changes: they are not a
// customer's activity.
var modelEventNames = []any{StageEnteredEvent, StageExitedEvent, "Tier Changed", "RFM Class Changed"}

// TierMetrics implements model.TierStore: every customer not merged away, in id order, with
// the tier rules' inputs over [from, to) and its stored tier. Each input is one GROUP BY
// query; the event scans run only when a tier uses referrals or activity.
func (s *Store) TierMetrics(ctx context.Context, cfg *model.TierConfig, from, to time.Time) ([]model.TierMetrics, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT c.id, COALESCE(p.balance, 0), COALESCE(st.stage, ''), COALESCE(st.entered_at, 0) FROM customers c
		LEFT JOIN customer_points p ON p.customer_id = c.id
		LEFT JOIN customer_stages st ON st.model = ? AND st.customer_id = c.id
		WHERE c.merged_into IS NULL ORDER BY c.id`), model.TierModel)
	out, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (model.TierMetrics, error) {
		var m model.TierMetrics
		var since int64
		err := sc.Scan(&m.CustomerID, &m.Points, &m.Current, &since)
		m.Since = fromMS(since)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("tier customers: %w", err)
	}
	find := func(id int64) *model.TierMetrics {
		i, ok := slices.BinarySearchFunc(out, id, func(m model.TierMetrics, id int64) int { return int(m.CustomerID - id) })
		if !ok {
			return nil // merged away since
		}
		return &out[i]
	}
	aggs, err := s.RFMAggregates(ctx, from, to, time.UTC)
	if err != nil {
		return nil, fmt.Errorf("tier orders: %w", err)
	}
	for _, a := range aggs {
		if m := find(a.CustomerID); m != nil {
			m.Orders, m.SpendMinor = a.Orders, a.NetMinor
		}
	}
	count := func(what string, where string, args []any, set func(*model.TierMetrics, int64)) error {
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, COUNT(*) FROM events WHERE ts >= ? AND ts < ? AND `+where+` GROUP BY customer_id`), append([]any{ms(from), ms(to)}, args...)...)
		if err != nil {
			return fmt.Errorf("tier %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			if m := find(id); m != nil {
				set(m, n)
			}
		}
		return rows.Err()
	}
	in := func(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }
	if cfg.UsesReferrals() && len(cfg.ReferralEvents) > 0 {
		names := make([]any, len(cfg.ReferralEvents))
		for i, n := range cfg.ReferralEvents {
			names[i] = n
		}
		if err := count("referrals", `name IN (`+in(len(names))+`)`, names, func(m *model.TierMetrics, n int64) { m.Referrals = n }); err != nil {
			return nil, err
		}
	}
	if cfg.UsesActivity() {
		if err := count("activity", `name NOT IN (`+in(len(modelEventNames))+`)`, modelEventNames, func(m *model.TierMetrics, n int64) { m.Activity = n }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TierCount is one tier's number of customers.
type TierCount struct {
	Tier  string `json:"tier"`
	Count int64  `json:"count"`
	// OffLadder marks a stored tier that is no longer on the ladder (renamed or removed; the
	// next run moves its customers).
	OffLadder bool `json:"off_ladder,omitempty"`
}

// TierCounts counts customers per tier in ladder order, lowest first; ownerID > 0 counts only
// that staff member's customers.
func (s *Store) TierCounts(ctx context.Context, cfg *model.TierConfig, sc staff.CustomerScope) ([]TierCount, error) {
	counts, err := s.StageCountsIn(ctx, model.TierModel, sc)
	if err != nil {
		return nil, err
	}
	out := make([]TierCount, 0, len(cfg.Tiers))
	for _, t := range cfg.Tiers {
		out = append(out, TierCount{Tier: t.Name, Count: counts[model.Stage(t.Name)]})
		delete(counts, model.Stage(t.Name))
	}
	var extra []TierCount
	for st, n := range counts {
		extra = append(extra, TierCount{Tier: string(st), Count: n, OffLadder: true})
	}
	slices.SortFunc(extra, func(a, b TierCount) int { return strings.Compare(a.Tier, b.Tier) })
	return append(out, extra...), nil
}

// gateSpec is a gate's stored definition.
type gateSpec struct {
	Match string           `json:"match"`
	Tier  string           `json:"min_tier,omitempty"`
	Order *model.GateOrder `json:"order,omitempty"`
}

// gateSpecOf normalises and validates a gate against the current ladder and returns its
// stored definition.
func (s *Store) gateSpecOf(ctx context.Context, g *model.Gate) (string, error) {
	g.Normalize()
	ladder, err := s.TierConfig(ctx)
	if err != nil {
		return "", err
	}
	if err := g.Validate(&ladder); err != nil {
		return "", err
	}
	spec, err := json.Marshal(gateSpec{g.Match, g.Tier, g.Order})
	return string(spec), err
}

// gateNameTaken is the error of a gate name already in use.
func gateNameTaken(name string) error {
	return &customer.FieldError{Field: "name", Reason: fmt.Sprintf("a gate named %q already exists", name)}
}

// CreateGate validates and stores a price gate against the current ladder; a name already in
// use names name.
func (s *Store) CreateGate(ctx context.Context, g *model.Gate, staffID int64) error {
	spec, err := s.gateSpecOf(ctx, g)
	if err != nil {
		return err
	}
	var by any
	if staffID > 0 {
		by = staffID
	}
	now := s.now()
	err = s.db.QueryRowContext(ctx, s.q(`INSERT INTO gates (name, spec, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		g.Name, spec, by, ms(now), ms(now)).Scan(&g.ID)
	if isUniqueViolation(err) {
		return gateNameTaken(g.Name)
	}
	g.CreatedAt, g.UpdatedAt = now, now
	return err
}

// UpdateGate validates and replaces a price gate's definition (name included); ErrNotFound
// when there is none, a name already in use names name.
func (s *Store) UpdateGate(ctx context.Context, g *model.Gate) error {
	spec, err := s.gateSpecOf(ctx, g)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE gates SET name = ?, spec = ?, updated_at = ? WHERE id = ?`), g.Name, spec, ms(s.now()), g.ID)
	if isUniqueViolation(err) {
		return gateNameTaken(g.Name)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	got, err := s.Gate(ctx, g.ID)
	if err == nil {
		*g = *got
	}
	return err
}

// DeleteGate removes a price gate; ErrNotFound when there is none.
func (s *Store) DeleteGate(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM gates WHERE id = ?`), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func scanGate(sc interface{ Scan(...any) error }) (*model.Gate, error) {
	var (
		g        model.Gate
		raw      string
		cre, upd int64
	)
	if err := sc.Scan(&g.ID, &g.Name, &raw, &cre, &upd); err != nil {
		return nil, err
	}
	var spec gateSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return nil, fmt.Errorf("gate %d: %w", g.ID, err)
	}
	g.Match, g.Tier, g.Order, g.CreatedAt, g.UpdatedAt = spec.Match, spec.Tier, spec.Order, fromMS(cre), fromMS(upd)
	return &g, nil
}

// Gates lists the price gates by name.
func (s *Store) Gates(ctx context.Context) ([]*model.Gate, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, spec, created_at, updated_at FROM gates ORDER BY name`)
	return collect(rows, err, scanGate)
}

// Gate reads one price gate, ErrNotFound when there is none.
func (s *Store) Gate(ctx context.Context, id int64) (*model.Gate, error) {
	g, err := scanGate(s.db.QueryRowContext(ctx, s.q(`SELECT id, name, spec, created_at, updated_at FROM gates WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return g, err
}

// GateAllows checks a customer against a price gate now and says why: the customer's stored
// tier (the lowest tier before the first tier run) against the gate's tier, and their paid
// orders against the gate's order rule. ErrNotFound when the gate or the customer does not
// exist.
func (s *Store) GateAllows(ctx context.Context, gateID, customerID int64) (bool, string, error) {
	g, err := s.Gate(ctx, gateID)
	if err != nil {
		return false, "", err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM customers WHERE id = ? AND merged_into IS NULL`), customerID).Scan(&n); err != nil {
		return false, "", err
	}
	if n == 0 {
		return false, "", ErrNotFound
	}
	var passed, failed []string
	if g.Tier != "" {
		ladder, err := s.TierConfig(ctx)
		if err != nil {
			return false, "", err
		}
		cur, _, _, err := s.CustomerStage(ctx, model.TierModel, customerID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false, "", err
		}
		if cur == "" {
			cur = model.Stage(ladder.Tiers[0].Name)
		}
		if ladder.Index(string(cur)) >= ladder.Index(g.Tier) {
			passed = append(passed, fmt.Sprintf("tier %s meets %s", cur, g.Tier))
		} else {
			failed = append(failed, fmt.Sprintf("tier %s is below %s", cur, g.Tier))
		}
	}
	if o := g.Order; o != nil {
		ok, why, err := s.gateOrder(ctx, o, customerID)
		if err != nil {
			return false, "", err
		}
		if ok {
			passed = append(passed, why)
		} else {
			failed = append(failed, why)
		}
	}
	if g.Match == model.MatchAny && len(passed) > 0 || len(failed) == 0 {
		return true, strings.Join(passed, "; "), nil
	}
	return false, strings.Join(failed, "; "), nil
}

// gateOrder finds the newest paid order that satisfies a gate's order rule.
func (s *Store) gateOrder(ctx context.Context, o *model.GateOrder, customerID int64) (bool, string, error) {
	since := s.now().Add(-time.Duration(o.WithinDays) * 24 * time.Hour)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT order_id, amount_minor - refunded_minor, products, paid_at FROM orders
		WHERE customer_id = ? AND paid_at >= ? AND status <> 'refunded' AND amount_minor - refunded_minor >= ? ORDER BY paid_at DESC`),
		customerID, ms(since), o.MinAmount)
	if err != nil {
		return false, "", err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id       string
			net, at  int64
			products string
		)
		if err := rows.Scan(&id, &net, &products, &at); err != nil {
			return false, "", err
		}
		if len(o.Products) > 0 {
			var lines []event.Product
			if err := json.Unmarshal([]byte(products), &lines); err != nil {
				return false, "", fmt.Errorf("order %s products: %w", id, err)
			}
			if !slices.ContainsFunc(lines, func(p event.Product) bool {
				return slices.ContainsFunc(o.Products, func(want string) bool { return want == p.ProductID || want == p.SKU || want == p.Name })
			}) {
				continue
			}
		}
		return true, fmt.Sprintf("paid order %s of %s on %s", id, yuan(net), fromMS(at).In(segment.Shanghai).Format("2006-01-02")), nil
	}
	if err := rows.Err(); err != nil {
		return false, "", err
	}
	what := "no paid order of at least " + yuan(o.MinAmount)
	if len(o.Products) > 0 {
		what += " with " + strings.Join(o.Products, " or ")
	}
	return false, fmt.Sprintf("%s in the last %d days", what, o.WithinDays), nil
}

// yuan formats minor units as ¥12.34.
func yuan(minor int64) string { return fmt.Sprintf("¥%d.%02d", minor/100, minor%100) }
