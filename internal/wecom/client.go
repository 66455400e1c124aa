package wecom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A small client of our own rather than a third-party WeCom SDK: siyu needs a handful of
// external-contact calls, a token shared through its own database, and control over retries
// and logging of secrets, which the SDKs (each with its own token cache and HTTP stack) do
// not give cleanly.

// TokenStore shares access tokens between instances (store.Store implements it).
type TokenStore interface {
	WeComToken(ctx context.Context, name string) (string, time.Time, error)
	RefreshWeComToken(ctx context.Context, name, stale string, margin time.Duration,
		fetch func(context.Context) (string, time.Time, error)) (string, time.Time, error)
}

// APIError is an errcode WeCom answered with.
type APIError struct {
	Path string
	Code int
	Msg  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wecom %s: errcode %d: %s", e.Path, e.Code, e.Msg)
}

// WeCom error codes the client acts on.
const (
	codeInvalidCredential = 40001
	codeInvalidToken      = 40014
	codeTokenExpired      = 42001
	codeFreqLimit         = 45009
	codeConcurrencyLimit  = 45033
)

// tokenMargin: a token is refreshed this long before WeCom says it expires.
const tokenMargin = 5 * time.Minute

// Client calls WeCom's server API for one app (corp id + secret).
type Client struct {
	cfg    Config
	http   *http.Client
	tokens TokenStore
	limit  *rate.Limiter
	// Sleep waits between retries (tests replace it); it returns early when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock for token expiry.
	Now func() time.Time
	// Retries is how often a rate-limited or failed call is retried with backoff.
	Retries int

	mu      sync.Mutex // serialises refreshes in this process
	token   string
	expires time.Time
}

// NewClient makes a client; tokens may be nil (the token then lives in this process only).
// Every call times out after 10 s and calls are limited to 20 a second, under WeCom's
// per-app frequency limits.
func NewClient(cfg Config, tokens TokenStore) (*Client, error) {
	if !cfg.APIReady() {
		return nil, errors.New("wecom api: corp id and secret are required")
	}
	if cfg.APIBase == "" {
		cfg.APIBase = "https://qyapi.weixin.qq.com"
	}
	return &Client{
		cfg:     cfg,
		http:    &http.Client{Timeout: 10 * time.Second},
		tokens:  tokens,
		limit:   rate.NewLimiter(20, 20),
		Sleep:   sleepCtx,
		Now:     time.Now,
		Retries: 4,
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tokenName keys the shared token by corp and secret without storing the secret.
func (c *Client) tokenName() string {
	sum := sha256.Sum256([]byte(c.cfg.Secret))
	return c.cfg.CorpID + ":" + hex.EncodeToString(sum[:6])
}

// accessToken returns a valid token: cached in the process, else shared in the database,
// else fetched. stale names a token WeCom just refused, which must not be returned again.
func (c *Client) accessToken(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Now()
	if c.token != "" && c.token != stale && c.expires.After(now.Add(tokenMargin)) {
		return c.token, nil
	}
	if c.tokens == nil {
		tok, exp, err := c.fetchToken(ctx)
		if err != nil {
			return "", err
		}
		c.token, c.expires = tok, exp
		return tok, nil
	}
	name := c.tokenName()
	if stale == "" {
		tok, exp, err := c.tokens.WeComToken(ctx, name)
		if err != nil {
			return "", err
		}
		if tok != "" && exp.After(now.Add(tokenMargin)) {
			c.token, c.expires = tok, exp
			return tok, nil
		}
	}
	tok, exp, err := c.tokens.RefreshWeComToken(ctx, name, stale, tokenMargin, c.fetchToken)
	if err != nil {
		return "", err
	}
	c.token, c.expires = tok, exp
	return tok, nil
}

func (c *Client) fetchToken(ctx context.Context) (string, time.Time, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	q := url.Values{"corpid": {c.cfg.CorpID}, "corpsecret": {c.cfg.Secret}}
	if err := c.do(ctx, http.MethodGet, "/cgi-bin/gettoken", q, nil, &out); err != nil {
		return "", time.Time{}, err
	}
	if out.AccessToken == "" || out.ExpiresIn <= 0 {
		return "", time.Time{}, errors.New("wecom gettoken: no token in the answer")
	}
	return out.AccessToken, c.Now().Add(time.Duration(out.ExpiresIn) * time.Second), nil
}

// call makes an authenticated call, refreshing the token once when WeCom says it expired.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	if q == nil {
		q = url.Values{}
	}
	tok, err := c.accessToken(ctx, "")
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		q.Set("access_token", tok)
		err := c.do(ctx, method, path, q, body, out)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && (ae.Code == codeInvalidToken || ae.Code == codeTokenExpired || ae.Code == codeInvalidCredential) {
			if tok, err = c.accessToken(ctx, tok); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// do sends one request, retrying rate limits (45009, 45033, HTTP 429) and server errors
// with exponential backoff, and decodes the answer into out. Errors never contain the URL:
// it carries the secret or the access token.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("wecom %s: %w", path, err)
		}
	}
	backoff := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if err := c.limit.Wait(ctx); err != nil {
			return fmt.Errorf("wecom %s: %w", path, err)
		}
		retry, err := c.once(ctx, method, path, q, payload, out)
		if !retry || attempt >= c.Retries {
			return err
		}
		if err := c.Sleep(ctx, backoff); err != nil {
			return fmt.Errorf("wecom %s: %w", path, err)
		}
		backoff *= 2
	}
}

func (c *Client) once(ctx context.Context, method, path string, q url.Values, payload []byte, out any) (retry bool, err error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.cfg.APIBase, "/")+path+"?"+q.Encode(), rd)
	if err != nil {
		return false, fmt.Errorf("wecom %s: bad request", path)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ctx.Err() == nil, fmt.Errorf("wecom %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return true, fmt.Errorf("wecom %s: read answer: %w", path, err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return true, fmt.Errorf("wecom %s: HTTP %d", path, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("wecom %s: HTTP %d", path, resp.StatusCode)
	}
	var head struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return false, fmt.Errorf("wecom %s: answer is not JSON", path)
	}
	if head.ErrCode != 0 {
		ae := &APIError{Path: path, Code: head.ErrCode, Msg: head.ErrMsg}
		return head.ErrCode == codeFreqLimit || head.ErrCode == codeConcurrencyLimit || head.ErrCode == -1, ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("wecom %s: decode answer: %w", path, err)
		}
	}
	return false, nil
}

// ExternalContact is a customer as externalcontact/get returns them.
type ExternalContact struct {
	ExternalUserID string `json:"external_userid"`
	Name           string `json:"name"`
	Avatar         string `json:"avatar"`
	Type           int    `json:"type"`   // 1 WeChat, 2 WeCom
	Gender         int    `json:"gender"` // 0 unknown, 1 male, 2 female
	UnionID        string `json:"unionid"`
	CorpName       string `json:"corp_name"`
}

// FollowUser is a staff member who has added the customer.
type FollowUser struct {
	UserID     string `json:"userid"`
	Remark     string `json:"remark"`
	CreateTime int64  `json:"createtime"`
	State      string `json:"state"`
	Tags       []struct {
		GroupName string `json:"group_name"`
		TagName   string `json:"tag_name"`
		TagID     string `json:"tag_id"`
		Type      int    `json:"type"` // 1 corp tag, 2 personal, 3 rule group
	} `json:"tags"`
}

// ContactDetail is the answer of externalcontact/get.
type ContactDetail struct {
	Contact     ExternalContact `json:"external_contact"`
	FollowUsers []FollowUser    `json:"follow_user"`
}

// ExternalContact reads one customer (externalcontact/get), following next_cursor through
// every page of follow users.
func (c *Client) ExternalContact(ctx context.Context, externalUserID string) (*ContactDetail, error) {
	var d ContactDetail
	cursor := ""
	for {
		var page struct {
			ContactDetail
			NextCursor string `json:"next_cursor"`
		}
		q := url.Values{"external_userid": {externalUserID}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := c.call(ctx, http.MethodGet, "/cgi-bin/externalcontact/get", q, nil, &page); err != nil {
			return nil, err
		}
		d.Contact = page.Contact
		d.FollowUsers = append(d.FollowUsers, page.FollowUsers...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			return &d, nil
		}
		cursor = page.NextCursor
	}
}

// ListExternalContacts lists the external_userids a staff member has added
// (externalcontact/list).
func (c *Client) ListExternalContacts(ctx context.Context, userID string) ([]string, error) {
	var out struct {
		IDs []string `json:"external_userid"`
	}
	err := c.call(ctx, http.MethodGet, "/cgi-bin/externalcontact/list", url.Values{"userid": {userID}}, nil, &out)
	return out.IDs, err
}

// MarkTag adds and removes corp tags on a customer as seen by one staff member
// (externalcontact/mark_tag).
func (c *Client) MarkTag(ctx context.Context, userID, externalUserID string, add, remove []string) error {
	body := map[string]any{"userid": userID, "external_userid": externalUserID}
	if len(add) > 0 {
		body["add_tag"] = add
	}
	if len(remove) > 0 {
		body["remove_tag"] = remove
	}
	return c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/mark_tag", nil, body, nil)
}

// CorpTag is one tag of WeCom's customer tag library.
type CorpTag struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	CreateTime int64  `json:"create_time"`
	Order      int    `json:"order"`
	Deleted    bool   `json:"deleted"`
}

// CorpTagGroup is a tag group of the library with its tags.
type CorpTagGroup struct {
	GroupID    string    `json:"group_id"`
	GroupName  string    `json:"group_name"`
	CreateTime int64     `json:"create_time"`
	Order      int       `json:"order"`
	Deleted    bool      `json:"deleted"`
	Tags       []CorpTag `json:"tag"`
}

// CorpTags reads the tag library (externalcontact/get_corp_tag_list): everything when both
// lists are empty, else the given tags and groups (tag ids win when both are given, as in
// WeCom).
func (c *Client) CorpTags(ctx context.Context, tagIDs, groupIDs []string) ([]CorpTagGroup, error) {
	body := map[string]any{}
	if len(tagIDs) > 0 {
		body["tag_id"] = tagIDs
	}
	if len(groupIDs) > 0 {
		body["group_id"] = groupIDs
	}
	var out struct {
		Groups []CorpTagGroup `json:"tag_group"`
	}
	err := c.call(ctx, http.MethodPost, "/cgi-bin/externalcontact/get_corp_tag_list", nil, body, &out)
	return out.Groups, err
}
