// Package ingest is siyu's Segment-compatible ingestion API: POST /v1/identify, /v1/track,
// /v1/page, /v1/screen, /v1/group, /v1/alias and /v1/batch, authenticated by a write key sent
// as the HTTP basic-auth user (as Segment's and RudderStack's SDKs do) or as "writeKey" in the
// body.
//
// A request goes through three steps:
//
//   - Decode (decode.go) turns the body into Messages: it enforces Segment's limits, checks
//     every field's type, corrects timestamps for client clock skew, extracts identities and
//     maps identify traits to a customer.Patch and e-commerce events to orders and refunds.
//     It touches no database, so bad input is refused before anything is written.
//   - The committer (commit.go) writes the messages of concurrent requests in one transaction
//     (group commit): it skips messages whose messageId is already stored, resolves identities
//     (merging customers that a message links), stores every message as an event and applies
//     side effects (profile patch, order, refund, merge) only for new events. One bad message
//     is undone by a savepoint without undoing its neighbours.
//   - The handler (handler.go) answers only after the transaction commits: a 200 means stored.
//
// docs/ingestion.md is the user-facing description.
package ingest
