// Package wecom is siyu's adapter to WeCom (企业微信): the callback message crypto
// (crypto.go), the callback events (event.go) and the worker that applies them to customers,
// group chats and tags (worker.go), the API client with a shared access token (client.go),
// and the configuration (config.go).
//
// A callback is acknowledged as soon as it is verified and durably queued in the wecom_inbox
// table (the HTTP edge is in internal/web/wecom.go); the Worker applies queued events after,
// each in one transaction with marking it done, so WeCom's five-second window is never spent
// on processing and WeCom's retries of the same event change nothing.
package wecom
