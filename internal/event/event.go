// Package event holds what customers do (events) and buy (orders): the raw material of every
// tag rule, segment and model.
package event

import (
	"strings"
	"time"
)

// Event is one message received about a customer: a track (with a name), page, screen,
// identify, alias or group call. MessageID makes ingestion idempotent.
type Event struct {
	ID         int64          `json:"id"`
	MessageID  string         `json:"message_id"`
	CustomerID int64          `json:"customer_id"`
	Type       string         `json:"type"`
	Name       string         `json:"name"`
	Properties map[string]any `json:"properties"`
	Context    map[string]any `json:"context,omitempty"`
	Timestamp  time.Time      `json:"timestamp"`
	ReceivedAt time.Time      `json:"received_at"`
}

// Order statuses.
const (
	Paid              = "paid"
	PartiallyRefunded = "partially_refunded"
	Refunded          = "refunded"
)

// Order is a purchase. Amounts are in minor units (分 for CNY) so sums are exact.
type Order struct {
	ID            int64     `json:"id"`
	OrderID       string    `json:"order_id"` // the shop's own order id, unique
	CustomerID    int64     `json:"customer_id"`
	Status        string    `json:"status"`
	AmountMinor   int64     `json:"amount_minor"`
	RefundedMinor int64     `json:"refunded_minor"`
	Currency      string    `json:"currency"`
	Products      []Product `json:"products"`
	PaidAt        time.Time `json:"paid_at"`
	RefundedAt    time.Time `json:"refunded_at,omitzero"`
	Source        string    `json:"source"` // "api", "import", "demo"
}

// NetMinor is the amount kept after refunds.
func (o *Order) NetMinor() int64 { return o.AmountMinor - o.RefundedMinor }

// Product is one line of an order, as the Segment e-commerce spec describes it.
type Product struct {
	ProductID  string  `json:"product_id,omitempty"`
	SKU        string  `json:"sku,omitempty"`
	Name       string  `json:"name,omitempty"`
	Category   string  `json:"category,omitempty"`
	PriceMinor int64   `json:"price_minor,omitempty"`
	Quantity   float64 `json:"quantity,omitempty"`
}

// Refund is a full or partial refund of an order. AmountMinor 0 means the rest of the order.
type Refund struct {
	OrderID     string
	AmountMinor int64
	At          time.Time
}

// zeroDecimal lists ISO 4217 currencies without minor units.
var zeroDecimal = map[string]bool{"JPY": true, "KRW": true, "VND": true, "CLP": true, "ISK": true, "UGX": true, "XAF": true, "XOF": true, "PYG": true}

// MinorUnits converts a major-unit amount (Segment's `total`, 12.5 yuan) to minor units (1250
// fen), rounding half away from zero.
func MinorUnits(amount float64, currency string) int64 {
	scale := 100.0
	if zeroDecimal[strings.ToUpper(currency)] {
		scale = 1
	}
	v := amount * scale
	if v < 0 {
		return -int64(-v + 0.5)
	}
	return int64(v + 0.5)
}

// MajorUnits is the inverse of MinorUnits, for display.
func MajorUnits(minor int64, currency string) float64 {
	if zeroDecimal[strings.ToUpper(currency)] {
		return float64(minor)
	}
	return float64(minor) / 100
}
