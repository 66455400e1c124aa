// Package analytics computes the numbers operators report on — metrics over a period compared
// with the previous one, acquisition cohorts (retention and repurchase triangles) and ordered
// event funnels — from aggregates the store reads. It owns the definitions (docs/analytics.md
// writes them out) and the arithmetic (rates, medians, period changes, funnel matching); it knows
// no SQL and no HTTP: the store implements Source, the web layer decodes and encodes.
//
// Every period is a range of calendar days [from, to) in the workspace time zone
// (Asia/Shanghai), so a day boundary is midnight in Shanghai, not in UTC.
package analytics
