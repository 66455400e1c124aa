package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/wecom"
)

// Service assigns owners, runs the pool and staff transfers over a store.
type Service struct {
	st  *store.Store
	log *slog.Logger

	// WeCom returns the WeCom API client, or nil when WeCom is not configured (transfers then
	// move customers in siyu only). Nil means never configured.
	WeCom func(ctx context.Context) (*wecom.Client, error)
	// ConsentWindow is how long a customer may refuse a transfer in WeCom (24 h, WeCom's):
	// a customer still waiting after it counts as accepted.
	ConsentWindow time.Duration
	// PollEvery is how often a transfer waiting for WeCom asks for the result (10 min).
	PollEvery time.Duration
	// Batch is how many items one transaction of a transfer moves (100: WeCom's most per
	// transfer call).
	Batch int
	// SyncLimit is the largest bulk assignment done within the request; larger ones run as a
	// job with progress (1,000).
	SyncLimit int
	// Location is the workspace time zone: a day of claims starts at its midnight.
	Location *time.Location

	// afterBatch, when set (tests), runs after each committed batch of a transfer.
	afterBatch func(ctx context.Context, t *store.Transfer, batch int)
	// afterSubmit, when set (tests), runs after each transfer call to WeCom with their count.
	afterSubmit func(n int)
	submits     int
	// wake, when set, makes the scheduler look for due jobs now.
	wake func()
}

// New returns a service over st.
func New(st *store.Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, log: log, ConsentWindow: 24 * time.Hour, PollEvery: 10 * time.Minute, Batch: 100, SyncLimit: 1000, Location: segment.Shanghai}
}

// Store is the store the service works on.
func (s *Service) Store() *store.Store { return s.st }

// MaxBulk bounds one bulk assignment.
const MaxBulk = 1_000_000

// checkStaff refuses staff ids that are not active accounts, naming the field.
func (s *Service) checkStaff(ctx context.Context, field func(i int) string, ids []int64) error {
	ok, err := s.st.ExistingStaff(ctx, ids)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if !ok[id] {
			return &customer.FieldError{Field: field(i), Reason: fmt.Sprintf("no active staff member %d", id)}
		}
	}
	return nil
}

// Assign gives one customer to staff member to (0: back to the pool), recorded as done by by.
// It reports whether the owner changed (false: the customer already had that owner). A
// customer that does not exist is store.ErrNotFound.
func (s *Service) Assign(ctx context.Context, customerID, to, by int64, note string) (bool, error) {
	if len(note) > 500 {
		return false, &customer.FieldError{Field: "note", Reason: "at most 500 bytes"}
	}
	if to < 0 {
		return false, &customer.FieldError{Field: "owner_id", Reason: "want a staff id, or 0 for the pool"}
	}
	if to != 0 {
		if err := s.checkStaff(ctx, func(int) string { return "owner_id" }, []int64{to}); err != nil {
			return false, err
		}
	}
	owners, err := s.st.CustomerOwners(ctx, []int64{customerID})
	if err != nil {
		return false, err
	}
	if _, ok := owners[customerID]; !ok {
		return false, store.ErrNotFound
	}
	reason := store.OwnerManual
	if to == 0 {
		reason = store.OwnerRelease
	}
	applied, err := s.st.SetOwners(ctx, []store.OwnerChange{{CustomerID: customerID, ToID: to, ByStaff: by, Reason: reason, Note: note}}, nil)
	if err != nil {
		return false, err
	}
	return applied[0], nil
}

// Bulk is a bulk assignment: the customers go to one staff member (To), or are spread over
// Rule's targets by weighted round robin within their caps.
type Bulk struct {
	Customers []int64
	To        int64    // one owner (0 with Rule empty: back to the pool)
	Rule      []Target // or a round-robin rule
	By        int64
	Note      string
}

// BulkResult is the outcome of a bulk assignment done in the request, or the transfer that
// carries a large one (TransferID; its progress is at /api/v1/transfers/{id}).
type BulkResult struct {
	Requested  int   `json:"requested"`
	Changed    int   `json:"changed"`
	Unchanged  int   `json:"unchanged"` // already with that owner
	Missing    []int `json:"missing"`   // positions of ids that are no live customer
	TransferID int64 `json:"transfer_id,omitempty"`
	Batches    int   `json:"batches"`
}

// AssignBulk assigns many customers. Up to SyncLimit it works within the call, one
// transaction per batch of Batch×5 customers; larger sets become a transfer of kind "assign"
// run by the scheduler in batches with progress. Bad input (an unknown staff member, a cap
// the rule cannot meet) writes nothing.
func (s *Service) AssignBulk(ctx context.Context, b Bulk) (*BulkResult, error) {
	if len(b.Customers) == 0 {
		return nil, &customer.FieldError{Field: "customers", Reason: "no customers to assign"}
	}
	if len(b.Customers) > MaxBulk {
		return nil, &customer.FieldError{Field: "customers", Reason: fmt.Sprintf("at most %d customers at once", MaxBulk)}
	}
	if len(b.Note) > 500 {
		return nil, &customer.FieldError{Field: "note", Reason: "at most 500 bytes"}
	}
	if b.To != 0 && len(b.Rule) > 0 {
		return nil, &customer.FieldError{Field: "rule", Reason: "give owner_id or rule, not both"}
	}
	ids := b.Customers
	owners, err := s.st.CustomerOwners(ctx, ids)
	if err != nil {
		return nil, err
	}
	res := &BulkResult{Requested: len(ids), Missing: []int{}}
	var live []int64
	seen := map[int64]bool{}
	for i, id := range ids {
		if _, ok := owners[id]; !ok {
			res.Missing = append(res.Missing, i)
			continue
		}
		if !seen[id] {
			seen[id] = true
			live = append(live, id)
		}
	}
	to := make([]int64, len(live))
	reason := store.OwnerBulk
	switch {
	case len(b.Rule) > 0:
		if err := checkTargets("rule", b.Rule); err != nil {
			return nil, err
		}
		staffIDs := make([]int64, len(b.Rule))
		for i, t := range b.Rule {
			staffIDs[i] = t.StaffID
		}
		if err := s.checkStaff(ctx, func(i int) string { return fmt.Sprintf("rule[%d].staff_id", i) }, staffIDs); err != nil {
			return nil, err
		}
		owned, err := s.st.OwnedCounts(ctx, staffIDs)
		if err != nil {
			return nil, err
		}
		// Customers the rule's staff already own stay where they are and do not use room.
		inRule := map[int64]bool{}
		for _, id := range staffIDs {
			inRule[id] = true
		}
		var moving []int64
		for _, id := range live {
			if !inRule[owners[id]] {
				moving = append(moving, id)
			}
		}
		res.Unchanged = len(live) - len(moving)
		picks, err := Distribute("rule", b.Rule, owned, len(moving))
		if err != nil {
			return nil, err
		}
		live, to = moving, picks
		reason = store.OwnerRule
	case b.To > 0:
		if err := s.checkStaff(ctx, func(int) string { return "owner_id" }, []int64{b.To}); err != nil {
			return nil, err
		}
		for i := range to {
			to[i] = b.To
		}
	case b.To < 0:
		return nil, &customer.FieldError{Field: "owner_id", Reason: "want a staff id, or 0 for the pool"}
	default:
		reason = store.OwnerRelease
	}
	if len(live) > s.SyncLimit {
		items := make([]store.TransferItem, len(live))
		for i, id := range live {
			items[i] = store.TransferItem{Kind: store.ItemCustomer, ItemID: id, CustomerID: id, FromStaff: owners[id], ToStaff: to[i]}
		}
		spec, _ := json.Marshal(map[string]any{"owner_id": b.To, "rule": b.Rule, "customers": len(live)})
		id, err := s.st.CreateTransfer(ctx, &store.Transfer{Kind: store.TransferAssign, Spec: spec, Note: b.Note, CreatedBy: b.By}, items, &store.Job{Kind: JobTransfer, RunAt: s.st.Now(), MaxAttempts: transferAttempts}, transferJobKey)
		if err != nil {
			return nil, err
		}
		s.kick()
		res.TransferID = id
		return res, nil
	}
	per := s.Batch * 5
	for start := 0; start < len(live); start += per {
		end := min(start+per, len(live))
		changes := make([]store.OwnerChange, 0, end-start)
		expect := make([]int64, 0, end-start)
		for i := start; i < end; i++ {
			changes = append(changes, store.OwnerChange{CustomerID: live[i], ToID: to[i], ByStaff: b.By, Reason: reason, Note: b.Note})
			expect = append(expect, -1)
		}
		applied, err := s.st.SetOwners(ctx, changes, expect)
		if err != nil {
			return res, fmt.Errorf("bulk assignment, batch %d: %w", res.Batches+1, err)
		}
		res.Batches++
		for _, ok := range applied {
			if ok {
				res.Changed++
			} else {
				res.Unchanged++
			}
		}
	}
	return res, nil
}

func (s *Service) kick() {
	if s.wake != nil {
		s.wake()
	}
}

// SetWake sets what makes the scheduler look for due jobs at once (after a transfer is
// created).
func (s *Service) SetWake(fn func()) { s.wake = fn }

// PoolConfig is the pool's configuration, kept in the settings.
type PoolConfig struct {
	// DailyClaimLimit is how many customers one sales person may claim per day (0: no limit).
	DailyClaimLimit int `json:"daily_claim_limit"`
	// MaxOwned is the most customers a sales person may own when claiming (0: no limit).
	MaxOwned int `json:"max_owned"`
	// ReleaseAfterDays returns customers nobody followed up for this many days to the pool
	// (0: never). Following up is finishing a task of theirs or changing their tags.
	ReleaseAfterDays int `json:"release_after_days"`
}

const poolSetting = "ownership.pool"

// DefaultPoolConfig is used until an operator saves one: 50 claims a day, no total cap, no
// automatic release.
var DefaultPoolConfig = PoolConfig{DailyClaimLimit: 50}

// PoolConfig reads the pool's configuration.
func (s *Service) PoolConfig(ctx context.Context) (PoolConfig, error) {
	v, ok, err := s.st.Setting(ctx, poolSetting)
	if err != nil || !ok {
		return DefaultPoolConfig, err
	}
	var c PoolConfig
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return DefaultPoolConfig, fmt.Errorf("pool settings: %w", err)
	}
	return c, nil
}

// SetPoolConfig checks and saves the pool's configuration.
func (s *Service) SetPoolConfig(ctx context.Context, c PoolConfig) error {
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{{"daily_claim_limit", c.DailyClaimLimit, 100000}, {"max_owned", c.MaxOwned, 10000000}, {"release_after_days", c.ReleaseAfterDays, 3650}} {
		if f.v < 0 || f.v > f.max {
			return &customer.FieldError{Field: f.name, Reason: fmt.Sprintf("want 0 (off) to %d", f.max)}
		}
	}
	b, _ := json.Marshal(c)
	return s.st.SetSetting(ctx, poolSetting, string(b))
}

// dayStart is the start of the workspace day holding t.
func (s *Service) dayStart(t time.Time) time.Time {
	y, m, d := t.In(s.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, s.Location)
}

// MaxClaim bounds one claim request.
const MaxClaim = 200

// ClaimResult says which customers a claim took and which others had taken first.
type ClaimResult struct {
	Claimed    []int64 `json:"claimed"`
	Taken      []int64 `json:"taken"`
	ClaimsLeft int     `json:"claims_left_today,omitempty"`
}

// Claim takes customers from the pool for staff member staffID under the pool's limits. Two
// claimants of one customer: exactly one gets it, the other finds it in Taken.
func (s *Service) Claim(ctx context.Context, staffID int64, ids []int64, note string) (*ClaimResult, error) {
	if len(ids) == 0 {
		return nil, &customer.FieldError{Field: "customers", Reason: "name at least one customer"}
	}
	if len(ids) > MaxClaim {
		return nil, &customer.FieldError{Field: "customers", Reason: fmt.Sprintf("at most %d at once", MaxClaim)}
	}
	seen := map[int64]bool{}
	for i, id := range ids {
		if id <= 0 || seen[id] {
			return nil, &customer.FieldError{Field: fmt.Sprintf("customers[%d]", i), Reason: "want distinct customer ids"}
		}
		seen[id] = true
	}
	cfg, err := s.PoolConfig(ctx)
	if err != nil {
		return nil, err
	}
	now := s.st.Now()
	lim := store.ClaimLimits{PerDay: cfg.DailyClaimLimit, MaxOwned: cfg.MaxOwned, DayStart: s.dayStart(now)}
	claimed, taken, err := s.st.Claim(ctx, staffID, ids, lim, note)
	var le *store.ClaimLimitError
	if errors.As(err, &le) {
		return nil, &customer.FieldError{Field: le.Field, Reason: le.Error()}
	}
	if err != nil {
		return nil, err
	}
	res := &ClaimResult{Claimed: orEmpty(claimed), Taken: orEmpty(taken)}
	if cfg.DailyClaimLimit > 0 {
		n, err := s.st.ClaimsSince(ctx, staffID, lim.DayStart)
		if err != nil {
			return nil, err
		}
		res.ClaimsLeft = max(cfg.DailyClaimLimit-int(n), 0)
	}
	return res, nil
}

func orEmpty(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// Release returns customers to the pool. onlyOwner, when not 0, releases only customers that
// staff member owns (a sales person giving up their own); the others are reported unchanged.
func (s *Service) Release(ctx context.Context, ids []int64, by, onlyOwner int64, note string) (released []int64, unchanged []int64, err error) {
	if len(ids) == 0 {
		return nil, nil, &customer.FieldError{Field: "customers", Reason: "name at least one customer"}
	}
	if len(ids) > 10000 {
		return nil, nil, &customer.FieldError{Field: "customers", Reason: "at most 10000 at once"}
	}
	changes := make([]store.OwnerChange, len(ids))
	expect := make([]int64, len(ids))
	for i, id := range ids {
		if id <= 0 {
			return nil, nil, &customer.FieldError{Field: fmt.Sprintf("customers[%d]", i), Reason: "want a customer id"}
		}
		changes[i] = store.OwnerChange{CustomerID: id, ByStaff: by, Reason: store.OwnerRelease, Note: note}
		expect[i] = -1
		if onlyOwner != 0 {
			expect[i] = onlyOwner
		}
	}
	applied, err := s.st.SetOwners(ctx, changes, expect)
	if err != nil {
		return nil, nil, err
	}
	released, unchanged = []int64{}, []int64{}
	for i, ok := range applied {
		if ok {
			released = append(released, ids[i])
		} else {
			unchanged = append(unchanged, ids[i])
		}
	}
	return released, unchanged, nil
}

// AutoRelease returns to the pool every customer nobody followed up for the configured
// number of days, batch by batch, and returns how many it released.
func (s *Service) AutoRelease(ctx context.Context) (int, error) {
	cfg, err := s.PoolConfig(ctx)
	if err != nil || cfg.ReleaseAfterDays <= 0 {
		return 0, err
	}
	cutoff := s.st.Now().Add(-time.Duration(cfg.ReleaseAfterDays) * 24 * time.Hour)
	released := 0
	for after := int64(0); ; {
		ids, owners, err := s.st.StaleOwned(ctx, cutoff, after, 500)
		if err != nil {
			return released, err
		}
		if len(ids) == 0 {
			return released, nil
		}
		changes := make([]store.OwnerChange, len(ids))
		for i, id := range ids {
			changes[i] = store.OwnerChange{CustomerID: id, Reason: store.OwnerAutoRelease,
				Note: fmt.Sprintf("not followed up for %d days", cfg.ReleaseAfterDays)}
		}
		applied, err := s.st.SetOwners(ctx, changes, owners)
		if err != nil {
			return released, err
		}
		for _, ok := range applied {
			if ok {
				released++
			}
		}
		after = ids[len(ids)-1]
	}
}
