// Package csvimport loads customers and orders from CSV files as operators export them from
// Excel, shops and other CRMs: UTF-8 with or without a BOM, GBK, or UTF-16; comma, tab or
// semicolon separated; Chinese or English headers, recognised through an alias table and
// overridable with a mapping. Customers are found by their identities, so importing the same
// file again changes nothing. Invalid rows are reported by line and column; in strict mode one
// invalid row writes nothing at all.
package csvimport
