package model

import (
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Stage is a lifecycle stage.
type Stage string

// The default lifecycle stages: new or old by age, then by paid orders.
const (
	NewNotBought  Stage = "新客未购" // new, no paid order yet
	NewBought     Stage = "新客已购" // new, at least one paid order
	OldBought     Stage = "老客已购" // old, exactly one paid order
	OldRepurchase Stage = "老客复购" // old, two or more paid orders
	// OldNotBought holds old customers who never bought: the four named stages do not cover
	// them and a customer is never silently dropped (as 未消费 in RFM).
	OldNotBought Stage = "老客未购"
)

// Stages lists the default stages in journey order.
var Stages = []Stage{NewNotBought, NewBought, OldBought, OldRepurchase, OldNotBought}

// LifecycleConfig configures the default lifecycle.
type LifecycleConfig struct {
	// NewDays: a customer created less than NewDays×24h ago is new (default 30).
	NewDays int `json:"new_days"`
}

// DefaultLifecycleConfig is "new" = created within 30 days.
func DefaultLifecycleConfig() LifecycleConfig { return LifecycleConfig{NewDays: 30} }

// Validate names a bad field.
func (c *LifecycleConfig) Validate() error {
	if c.NewDays < 1 || c.NewDays > MaxWindowDays {
		return &customer.FieldError{Field: "new_days", Reason: fmt.Sprintf("must be between 1 and %d days, got %d", MaxWindowDays, c.NewDays)}
	}
	return nil
}

// StageOf is the default stage of a customer created at createdAt with paidOrders paid orders
// (paid or partially refunded, any time up to now), at now.
func (c *LifecycleConfig) StageOf(createdAt time.Time, paidOrders int64, now time.Time) Stage {
	isNew := now.Sub(createdAt) < time.Duration(c.NewDays)*24*time.Hour
	switch {
	case isNew && paidOrders == 0:
		return NewNotBought
	case isNew:
		return NewBought
	case paidOrders == 0:
		return OldNotBought
	case paidOrders == 1:
		return OldBought
	default:
		return OldRepurchase
	}
}
