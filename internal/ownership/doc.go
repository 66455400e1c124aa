// Package ownership decides who owns a customer: assigning and reassigning owners (one, a
// list or a segment, by hand or by a weighted round-robin rule with caps), the customer pool
// (公海) that sales claim from under daily and total limits and that neglected customers
// return to, and staff transfers — 离职继承 when someone leaves, 在职继承 when they hand
// customers over — run as durable jobs that move customers, open tasks and group chats in
// batches, each item exactly once, through WeCom's transfer API when WeCom is configured.
// Every change of owner is recorded in the owner history and as an "Owner Changed" event.
package ownership
