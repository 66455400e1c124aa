// Package model holds siyu's customer value models as pure computations over per-customer order
// aggregates: RFM scores and the eight RFM classes, Pareto (二八) analysis, and the default
// lifecycle stages. It knows no SQL: the store reads the aggregates (one GROUP BY query) and
// keeps the snapshots; RunRFM and RunLifecycle tie the two together through the small
// interfaces declared here. docs/models.md gives the definitions operators see.
package model
