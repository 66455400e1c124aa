package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// migrations is the ordered list of schema changes. Never edit a released migration: append a
// new one. SQL is shared by both engines; {{pk}} and {{json}} expand per engine.
var migrations = []string{
	// 1: staff, sessions, keys, customers, identities, events, orders.
	`
CREATE TABLE staff (
	id {{pk}},
	login TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	email TEXT NOT NULL DEFAULT '',
	department TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	disabled_at BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	staff_id BIGINT NOT NULL REFERENCES staff(id),
	csrf TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_staff ON sessions(staff_id);
CREATE TABLE api_keys (
	id {{pk}},
	kind TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL DEFAULT '',
	prefix TEXT NOT NULL,
	hash TEXT NOT NULL UNIQUE,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	revoked_at BIGINT,
	last_used_at BIGINT
);
CREATE TABLE customers (
	id {{pk}},
	name TEXT NOT NULL DEFAULT '',
	gender TEXT NOT NULL DEFAULT '',
	birthday TEXT NOT NULL DEFAULT '',
	region TEXT NOT NULL DEFAULT '',
	phone TEXT NOT NULL DEFAULT '',
	email TEXT NOT NULL DEFAULT '',
	avatar_url TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	owner_id BIGINT REFERENCES staff(id),
	attrs {{json}} NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	last_seen_at BIGINT NOT NULL DEFAULT 0,
	merged_into BIGINT
);
CREATE INDEX customers_owner ON customers(owner_id);
CREATE INDEX customers_source ON customers(source);
CREATE INDEX customers_created ON customers(created_at);
CREATE INDEX customers_phone ON customers(phone);
CREATE INDEX customers_name ON customers(name);
CREATE TABLE identities (
	kind TEXT NOT NULL,
	value TEXT NOT NULL,
	customer_id BIGINT NOT NULL REFERENCES customers(id),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (kind, value)
);
CREATE INDEX identities_customer ON identities(customer_id);
CREATE INDEX identities_value ON identities(value);
CREATE TABLE customer_optouts (
	customer_id BIGINT NOT NULL REFERENCES customers(id),
	channel TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (customer_id, channel)
);
CREATE TABLE attribute_defs (
	key TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	label TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE TABLE customer_merges (
	id {{pk}},
	from_id BIGINT NOT NULL,
	into_id BIGINT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	merged_at BIGINT NOT NULL
);
CREATE INDEX customer_merges_into ON customer_merges(into_id);
CREATE TABLE events (
	id {{pk}},
	message_id TEXT NOT NULL UNIQUE,
	customer_id BIGINT NOT NULL,
	type TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	properties {{json}} NOT NULL DEFAULT '{}',
	context {{json}} NOT NULL DEFAULT '{}',
	ts BIGINT NOT NULL,
	received_at BIGINT NOT NULL
);
CREATE INDEX events_customer_ts ON events(customer_id, ts);
CREATE INDEX events_name_ts ON events(name, ts);
CREATE TABLE orders (
	id {{pk}},
	order_id TEXT NOT NULL UNIQUE,
	customer_id BIGINT NOT NULL,
	status TEXT NOT NULL,
	amount_minor BIGINT NOT NULL,
	refunded_minor BIGINT NOT NULL DEFAULT 0,
	currency TEXT NOT NULL,
	products {{json}} NOT NULL DEFAULT '[]',
	paid_at BIGINT NOT NULL,
	refunded_at BIGINT,
	source TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX orders_customer_paid ON orders(customer_id, paid_at);
CREATE INDEX orders_paid ON orders(paid_at);
CREATE TABLE settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
	// 2: tags, tag history, tag rules, segments and their daily counts.
	`
CREATE TABLE tag_groups (
	id {{pk}},
	name TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	exclusive BIGINT NOT NULL DEFAULT 0,
	position BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE tags (
	id {{pk}},
	group_id BIGINT NOT NULL REFERENCES tag_groups(id),
	name TEXT NOT NULL,
	color TEXT NOT NULL DEFAULT '',
	position BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (group_id, name)
);
CREATE TABLE customer_tags (
	customer_id BIGINT NOT NULL REFERENCES customers(id),
	tag_id BIGINT NOT NULL REFERENCES tags(id),
	assigned_at BIGINT NOT NULL,
	assigned_by BIGINT,
	reason TEXT NOT NULL,
	ref TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (customer_id, tag_id)
);
CREATE INDEX customer_tags_tag ON customer_tags(tag_id);
CREATE TABLE tag_history (
	id {{pk}},
	customer_id BIGINT NOT NULL,
	tag_id BIGINT NOT NULL,
	action TEXT NOT NULL,
	at BIGINT NOT NULL,
	by_staff BIGINT,
	reason TEXT NOT NULL,
	ref TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tag_history_customer ON tag_history(customer_id, at);
CREATE TABLE tag_rules (
	id {{pk}},
	name TEXT NOT NULL,
	enabled BIGINT NOT NULL DEFAULT 1,
	spec {{json}} NOT NULL,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	backfilled_at BIGINT
);
CREATE TABLE segments (
	id {{pk}},
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	tree {{json}} NOT NULL,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE segment_counts (
	segment_id BIGINT NOT NULL REFERENCES segments(id),
	day TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (segment_id, day)
);
`,
	// 3: indexes for segments evaluated as SQL (store.SegmentSQL): a customer's events of one
	// name in a time window, opt-outs by channel, last seen and birthday anniversaries.
	`
CREATE INDEX events_customer_name_ts ON events(customer_id, name, ts);
CREATE INDEX customer_optouts_channel ON customer_optouts(channel, customer_id);
CREATE INDEX customers_last_seen ON customers(last_seen_at);
CREATE INDEX customers_birthday_md ON customers((substr(birthday, 6, 5)));
`,
	// 4: customer models (internal/model): RFM snapshots (the newest two runs keep their rows),
	// lifecycle stages per customer and the history of stage entries and exits.
	`
CREATE TABLE model_runs (
	id {{pk}},
	model TEXT NOT NULL,
	config {{json}} NOT NULL,
	as_of TEXT NOT NULL,
	computed_at BIGINT NOT NULL,
	customers BIGINT NOT NULL DEFAULT 0,
	buyers BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX model_runs_model ON model_runs(model, id);
CREATE TABLE customer_rfm (
	run_id BIGINT NOT NULL REFERENCES model_runs(id),
	customer_id BIGINT NOT NULL,
	r BIGINT NOT NULL,
	f BIGINT NOT NULL,
	m_minor BIGINT NOT NULL,
	r_score BIGINT NOT NULL,
	f_score BIGINT NOT NULL,
	m_score BIGINT NOT NULL,
	class TEXT NOT NULL,
	PRIMARY KEY (run_id, customer_id)
);
CREATE INDEX customer_rfm_customer ON customer_rfm(customer_id);
CREATE TABLE customer_stages (
	model TEXT NOT NULL,
	customer_id BIGINT NOT NULL,
	stage TEXT NOT NULL,
	entered_at BIGINT NOT NULL,
	PRIMARY KEY (model, customer_id)
);
CREATE INDEX customer_stages_stage ON customer_stages(model, stage);
CREATE TABLE model_events (
	id {{pk}},
	model TEXT NOT NULL,
	customer_id BIGINT NOT NULL,
	kind TEXT NOT NULL,
	stage TEXT NOT NULL,
	at BIGINT NOT NULL
);
CREATE INDEX model_events_customer ON model_events(customer_id, at);
`,
	// 5: durable jobs (internal/scheduler), SOPs with their versions, touches (one planned
	// contact of one customer, unique per (SOP, step, customer, occurrence) by its key) and the
	// customers each audience-entry SOP has seen in its audience.
	`
CREATE TABLE jobs (
	id {{pk}},
	kind TEXT NOT NULL,
	key TEXT NOT NULL UNIQUE,
	run_at BIGINT NOT NULL,
	payload {{json}} NOT NULL DEFAULT '{}',
	state TEXT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	max_attempts BIGINT NOT NULL DEFAULT 8,
	lease_owner TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_pending ON jobs(state, run_at);
CREATE INDEX jobs_leased ON jobs(state, lease_until);
CREATE TABLE sops (
	id {{pk}},
	name TEXT NOT NULL,
	status TEXT NOT NULL,
	version BIGINT NOT NULL,
	trigger_kind TEXT NOT NULL,
	trigger_event TEXT NOT NULL DEFAULT '',
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX sops_trigger ON sops(status, trigger_kind, trigger_event);
CREATE TABLE sop_versions (
	sop_id BIGINT NOT NULL REFERENCES sops(id),
	version BIGINT NOT NULL,
	spec {{json}} NOT NULL,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (sop_id, version)
);
CREATE TABLE touches (
	id {{pk}},
	key TEXT NOT NULL UNIQUE,
	sop_id BIGINT NOT NULL,
	version BIGINT NOT NULL,
	step BIGINT NOT NULL,
	customer_id BIGINT NOT NULL,
	occurrence TEXT NOT NULL,
	entered_at BIGINT NOT NULL,
	channel TEXT NOT NULL,
	executor_id BIGINT,
	automatic BIGINT NOT NULL DEFAULT 0,
	due_at BIGINT NOT NULL,
	due_day TEXT NOT NULL,
	state TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	content TEXT NOT NULL DEFAULT '',
	note TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	finished_at BIGINT
);
CREATE INDEX touches_cap ON touches(customer_id, channel, due_day);
CREATE INDEX touches_inbox ON touches(executor_id, state, due_at);
CREATE INDEX touches_sop_customer ON touches(sop_id, customer_id, step, entered_at);
CREATE TABLE sop_members (
	sop_id BIGINT NOT NULL,
	customer_id BIGINT NOT NULL,
	entered_at BIGINT NOT NULL,
	PRIMARY KEY (sop_id, customer_id)
);
`,
	// 6: WeCom (internal/wecom): the callback inbox (one row per event, unique by its key so
	// that WeCom's retries change nothing), callback signatures seen (replays are refused),
	// staff ↔ WeCom userid, channel codes (渠道活码 state → source), group chats and their
	// members, WeCom tags mirrored as siyu tags, and the access token shared by instances.
	`
CREATE TABLE wecom_inbox (
	id {{pk}},
	event_key TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	payload TEXT NOT NULL,
	state TEXT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_at BIGINT NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	received_at BIGINT NOT NULL,
	done_at BIGINT
);
CREATE INDEX wecom_inbox_pending ON wecom_inbox(state, next_at);
CREATE TABLE wecom_nonces (
	signature TEXT NOT NULL,
	nonce TEXT NOT NULL,
	seen_at BIGINT NOT NULL,
	PRIMARY KEY (signature, nonce)
);
CREATE INDEX wecom_nonces_seen ON wecom_nonces(seen_at);
CREATE TABLE wecom_staff (
	wecom_userid TEXT PRIMARY KEY,
	staff_id BIGINT NOT NULL UNIQUE REFERENCES staff(id),
	created_at BIGINT NOT NULL
);
CREATE TABLE wecom_channel_codes (
	state TEXT PRIMARY KEY,
	source TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE TABLE wecom_group_chats (
	chat_id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	owner_userid TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	dismissed_at BIGINT
);
CREATE TABLE wecom_group_members (
	chat_id TEXT NOT NULL,
	member_id TEXT NOT NULL,
	customer_id BIGINT,
	joined_at BIGINT NOT NULL,
	PRIMARY KEY (chat_id, member_id)
);
CREATE INDEX wecom_group_members_customer ON wecom_group_members(customer_id);
CREATE TABLE wecom_tags (
	wecom_id TEXT PRIMARY KEY,
	tag_id BIGINT NOT NULL UNIQUE,
	wecom_group_id TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX wecom_tags_group ON wecom_tags(wecom_group_id);
CREATE TABLE wecom_tokens (
	name TEXT PRIMARY KEY,
	token TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
`,
	// 7: events by time, for "events today" on the 工作台 and time-range analytics: appends at
	// the right edge of the index, so ingestion pays little for it.
	`CREATE INDEX events_ts ON events(ts);`,
	// 8: the 工作台's totals without reading table rows: live customers from a small partial
	// index, a month's revenue from an index that covers the amounts.
	`CREATE INDEX customers_alive ON customers(id) WHERE merged_into IS NULL;
CREATE INDEX orders_paid_amounts ON orders(paid_at, currency, amount_minor, refunded_minor, customer_id);`,
	// 9: member points and price gates (internal/model points.go, tier.go): one balance row per
	// customer (segments read customer_points.balance), the append-only ledger (a unique
	// idempotency key per entry, so a replayed order, event or expiry run writes nothing), the
	// live earn lots that spends and expiry consume oldest first, and named price gates.
	`
CREATE TABLE customer_points (
	customer_id BIGINT PRIMARY KEY,
	balance BIGINT NOT NULL,
	earned BIGINT NOT NULL DEFAULT 0,
	spent BIGINT NOT NULL DEFAULT 0,
	expired BIGINT NOT NULL DEFAULT 0,
	updated_at BIGINT NOT NULL
);
CREATE INDEX customer_points_balance ON customer_points(balance);
CREATE TABLE points_ledger (
	id {{pk}},
	customer_id BIGINT NOT NULL,
	delta BIGINT NOT NULL,
	kind TEXT NOT NULL,
	rule TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	ref TEXT NOT NULL DEFAULT '',
	idem_key TEXT NOT NULL UNIQUE,
	staff_id BIGINT,
	at BIGINT NOT NULL,
	expires_at BIGINT
);
CREATE INDEX points_ledger_customer ON points_ledger(customer_id, id);
CREATE INDEX points_ledger_ref ON points_ledger(ref) WHERE ref <> '';
CREATE TABLE points_lots (
	ledger_id BIGINT PRIMARY KEY,
	customer_id BIGINT NOT NULL,
	remaining BIGINT NOT NULL,
	at BIGINT NOT NULL,
	expires_at BIGINT
);
CREATE INDEX points_lots_customer ON points_lots(customer_id, at, ledger_id);
CREATE INDEX points_lots_expires ON points_lots(expires_at);
CREATE TABLE gates (
	id {{pk}},
	name TEXT NOT NULL UNIQUE,
	spec {{json}} NOT NULL,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
`,
	// 10: the names of deleted tags, so a customer's tag history still says which tag it was.
	`CREATE TABLE deleted_tags (
	id BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	group_name TEXT NOT NULL,
	deleted_at BIGINT NOT NULL
);`,
	// 11: the audit log (internal/audit names the actions): append-only, enforced by triggers on
	// both engines; newest-first pages by id, filters by actor, action, target and time.
	`
CREATE TABLE audit_log (
	id {{pk}},
	at BIGINT NOT NULL,
	staff_id BIGINT,
	key_id BIGINT,
	action TEXT NOT NULL,
	target TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	detail {{json}} NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_staff ON audit_log(staff_id, id);
CREATE INDEX audit_log_key ON audit_log(key_id, id);
CREATE INDEX audit_log_action ON audit_log(action, id);
CREATE INDEX audit_log_target ON audit_log(target, id);
{{append_only:audit_log}}
`,
	// 12: the content library (folders, items, versions, tags, review log, image blobs, use by
	// SOP steps and touches), staff personas (人设) and channel codes (渠道活码) with their adds.
	`
CREATE TABLE content_folders (
	id {{pk}},
	parent_id BIGINT REFERENCES content_folders(id),
	name TEXT NOT NULL,
	position BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX content_folders_name ON content_folders(COALESCE(parent_id, 0), name);
CREATE TABLE contents (
	id {{pk}},
	folder_id BIGINT REFERENCES content_folders(id),
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	title TEXT NOT NULL,
	topic TEXT NOT NULL DEFAULT '',
	search TEXT NOT NULL DEFAULT '',
	version BIGINT NOT NULL,
	published_version BIGINT NOT NULL DEFAULT 0,
	submitted_by BIGINT,
	submitted_at BIGINT,
	reviewed_by BIGINT,
	reviewed_at BIGINT,
	published_at BIGINT,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX contents_status ON contents(status, id);
CREATE INDEX contents_folder ON contents(folder_id, id);
CREATE TABLE content_versions (
	content_id BIGINT NOT NULL REFERENCES contents(id),
	version BIGINT NOT NULL,
	title TEXT NOT NULL,
	body {{json}} NOT NULL,
	author_id BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (content_id, version)
);
CREATE TABLE content_tags (
	content_id BIGINT NOT NULL REFERENCES contents(id),
	kind TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (content_id, kind, value)
);
CREATE INDEX content_tags_value ON content_tags(kind, value, content_id);
CREATE TABLE content_comments (
	id {{pk}},
	content_id BIGINT NOT NULL REFERENCES contents(id),
	version BIGINT NOT NULL,
	staff_id BIGINT,
	action TEXT NOT NULL,
	from_status TEXT NOT NULL DEFAULT '',
	to_status TEXT NOT NULL DEFAULT '',
	body TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX content_comments_content ON content_comments(content_id, id);
CREATE TABLE content_blobs (
	id {{pk}},
	sha256 TEXT NOT NULL,
	mime TEXT NOT NULL,
	size BIGINT NOT NULL,
	data BYTEA NOT NULL,
	created_by BIGINT,
	created_at BIGINT NOT NULL
);
CREATE TABLE content_refs (
	sop_id BIGINT NOT NULL,
	version BIGINT NOT NULL,
	step BIGINT NOT NULL,
	content_id BIGINT NOT NULL,
	PRIMARY KEY (sop_id, version, step)
);
CREATE INDEX content_refs_content ON content_refs(content_id);
CREATE TABLE touch_contents (
	touch_id BIGINT PRIMARY KEY,
	content_id BIGINT NOT NULL,
	content_version BIGINT NOT NULL,
	attachments {{json}} NOT NULL DEFAULT '[]'
);
CREATE INDEX touch_contents_content ON touch_contents(content_id);
CREATE TABLE personas (
	id {{pk}},
	name TEXT NOT NULL UNIQUE,
	title TEXT NOT NULL DEFAULT '',
	intro TEXT NOT NULL DEFAULT '',
	avatar_url TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE staff_personas (
	staff_id BIGINT PRIMARY KEY REFERENCES staff(id),
	persona_id BIGINT NOT NULL REFERENCES personas(id)
);
CREATE INDEX staff_personas_persona ON staff_personas(persona_id);
CREATE TABLE channel_codes (
	id {{pk}},
	name TEXT NOT NULL,
	state TEXT NOT NULL UNIQUE,
	channel TEXT NOT NULL DEFAULT '',
	campaign TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL,
	spec {{json}} NOT NULL,
	status TEXT NOT NULL,
	last_staff_id BIGINT,
	current_staff_id BIGINT,
	wecom_config_id TEXT NOT NULL DEFAULT '',
	wecom_qr_code TEXT NOT NULL DEFAULT '',
	wecom_error TEXT NOT NULL DEFAULT '',
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE channel_code_adds (
	id {{pk}},
	code_id BIGINT NOT NULL REFERENCES channel_codes(id),
	event_key TEXT NOT NULL UNIQUE,
	customer_id BIGINT NOT NULL,
	staff_id BIGINT,
	external_userid TEXT NOT NULL DEFAULT '',
	day TEXT NOT NULL,
	added_at BIGINT NOT NULL,
	deleted_at BIGINT,
	welcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX channel_code_adds_code ON channel_code_adds(code_id, day);
CREATE INDEX channel_code_adds_staff ON channel_code_adds(code_id, staff_id, day);
CREATE INDEX channel_code_adds_customer ON channel_code_adds(customer_id, staff_id);
`,
	// 13: customer ownership (internal/ownership): the owner history (every change of owner,
	// also claims from and releases to the pool), staff transfers (离职继承 / 在职继承, large
	// assignments) with one row per item moved exactly once, and erased customers' tombstones.
	`
CREATE TABLE owner_history (
	id {{pk}},
	customer_id BIGINT NOT NULL,
	from_id BIGINT,
	to_id BIGINT,
	by_staff BIGINT,
	reason TEXT NOT NULL,
	note TEXT NOT NULL DEFAULT '',
	ref TEXT NOT NULL DEFAULT '',
	at BIGINT NOT NULL
);
CREATE INDEX owner_history_customer ON owner_history(customer_id, id);
CREATE INDEX owner_history_to ON owner_history(to_id, reason, at);
CREATE TABLE transfers (
	id {{pk}},
	kind TEXT NOT NULL,
	from_staff BIGINT,
	spec {{json}} NOT NULL,
	state TEXT NOT NULL,
	via_wecom BIGINT NOT NULL DEFAULT 0,
	note TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	finished_at BIGINT
);
CREATE TABLE transfer_items (
	transfer_id BIGINT NOT NULL,
	kind TEXT NOT NULL,
	item_id BIGINT NOT NULL,
	chat_id TEXT NOT NULL DEFAULT '',
	customer_id BIGINT NOT NULL DEFAULT 0,
	from_staff BIGINT NOT NULL DEFAULT 0,
	to_staff BIGINT NOT NULL,
	state TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	submitted_at BIGINT,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (transfer_id, kind, item_id, chat_id)
);
CREATE INDEX transfer_items_state ON transfer_items(transfer_id, state, kind);
CREATE INDEX transfer_items_customer ON transfer_items(transfer_id, kind, customer_id, state);
CREATE TABLE customer_erasures (
	customer_id BIGINT PRIMARY KEY,
	erased_at BIGINT NOT NULL,
	by_staff BIGINT,
	reason TEXT NOT NULL DEFAULT '',
	removed {{json}} NOT NULL DEFAULT '{}'
);
`,
	// 14: the change feed (changefeed.go): what each commit changed, for the other processes
	// on the same PostgreSQL database; kept for minutes. Unused on SQLite.
	`CREATE TABLE change_feed (
	id {{pk}},
	origin TEXT NOT NULL,
	at BIGINT NOT NULL,
	payload TEXT NOT NULL
);
CREATE INDEX change_feed_at ON change_feed(at);`,
	// 15: departments (a tree; staff belong to one) and custom roles (a permission matrix and
	// a data scope; staff.role and api_keys.role hold a built-in role or a custom role's key).
	// The free-text staff.department becomes one top-level department per distinct name.
	`
CREATE TABLE departments (
	id {{pk}},
	parent_id BIGINT REFERENCES departments(id),
	name TEXT NOT NULL,
	sort BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX departments_parent ON departments(parent_id);
ALTER TABLE staff ADD COLUMN department_id BIGINT REFERENCES departments(id);
INSERT INTO departments (name, sort, created_at, updated_at)
	SELECT TRIM(department), 0, MIN(created_at), MIN(created_at) FROM staff WHERE TRIM(department) <> '' GROUP BY TRIM(department);
UPDATE staff SET department = TRIM(department),
	department_id = (SELECT d.id FROM departments d WHERE d.parent_id IS NULL AND d.name = TRIM(staff.department))
	WHERE TRIM(department) <> '';
CREATE INDEX staff_department ON staff(department_id);
CREATE INDEX staff_role ON staff(role);
CREATE TABLE roles (
	id {{pk}},
	key TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	template TEXT NOT NULL DEFAULT '',
	permissions TEXT NOT NULL DEFAULT '',
	data_scope TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
`,
	// 16: sign-in hardening (store/security.go): two-factor (TOTP) secrets and hashed recovery
	// codes, password change time, sessions with last use, device and a pending stage (password
	// checked, second factor not yet), and API keys with a scope and an expiry.
	`
ALTER TABLE staff ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN totp_pending TEXT NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0;
ALTER TABLE staff ADD COLUMN password_changed_at BIGINT;
CREATE TABLE recovery_codes (
	staff_id BIGINT NOT NULL REFERENCES staff(id),
	hash TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	used_at BIGINT,
	PRIMARY KEY (staff_id, hash)
);
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN ip TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
`,
	// 17: surveys (internal/survey, store/surveys.go): definitions (spec is survey.Definition as
	// JSON, with counters for the list), one row per response, and one per (survey, customer)
	// whose primary key makes "one answer per customer" hold under concurrent submits.
	`
CREATE TABLE surveys (
	id {{pk}},
	token TEXT NOT NULL UNIQUE,
	title TEXT NOT NULL,
	status TEXT NOT NULL,
	spec {{json}} NOT NULL,
	responses BIGINT NOT NULL DEFAULT 0,
	respondents BIGINT NOT NULL DEFAULT 0,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	closed_at BIGINT,
	deleted_at BIGINT
);
CREATE TABLE survey_responses (
	id {{pk}},
	survey_id BIGINT NOT NULL REFERENCES surveys(id),
	customer_id BIGINT NOT NULL,
	answers {{json}} NOT NULL,
	via TEXT NOT NULL,
	ip TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX survey_responses_survey ON survey_responses(survey_id, id);
CREATE INDEX survey_responses_customer ON survey_responses(customer_id, id);
CREATE TABLE survey_respondents (
	survey_id BIGINT NOT NULL REFERENCES surveys(id),
	customer_id BIGINT NOT NULL,
	responses BIGINT NOT NULL,
	first_at BIGINT NOT NULL,
	last_at BIGINT NOT NULL,
	PRIMARY KEY (survey_id, customer_id)
);
CREATE INDEX survey_respondents_customer ON survey_respondents(customer_id);
`,
	// 18: objectives and key results (internal/goal): OKRs bound to metrics, progress computed.
	`CREATE TABLE objectives (
	id {{pk}},
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	from_day TEXT NOT NULL,
	to_day TEXT NOT NULL,
	owner_staff_id BIGINT,
	department_id BIGINT,
	created_by BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX objectives_period ON objectives(from_day, to_day);
CREATE TABLE key_results (
	id {{pk}},
	objective_id BIGINT NOT NULL REFERENCES objectives(id),
	position BIGINT NOT NULL,
	name TEXT NOT NULL,
	metric TEXT NOT NULL,
	segment_id BIGINT,
	target DOUBLE PRECISION NOT NULL,
	direction TEXT NOT NULL,
	owner_staff_id BIGINT,
	department_id BIGINT
);
CREATE INDEX key_results_objective ON key_results(objective_id, position);`,
	// 19: RFM and lifecycle read a customer's paid orders from the index alone:
	// orders_customer_paid also holds the status and amounts (covering; SQLite's GROUP BY
	// customer_id then streams in index order instead of sorting ten million rows).
	`DROP INDEX orders_customer_paid;
CREATE INDEX orders_customer_paid ON orders(customer_id, paid_at, status, amount_minor, refunded_minor);`,
	// 20: customer_rfm without the foreign key to model_runs: a run writes its rows right after
	// its model_runs row in one transaction, and checking the key row by row was most of the
	// time of saving a million-row run on PostgreSQL (one trigger call per row).
	`CREATE TABLE customer_rfm_rows (
	run_id BIGINT NOT NULL,
	customer_id BIGINT NOT NULL,
	r BIGINT NOT NULL,
	f BIGINT NOT NULL,
	m_minor BIGINT NOT NULL,
	r_score BIGINT NOT NULL,
	f_score BIGINT NOT NULL,
	m_score BIGINT NOT NULL,
	class TEXT NOT NULL,
	PRIMARY KEY (run_id, customer_id)
);
INSERT INTO customer_rfm_rows (run_id, customer_id, r, f, m_minor, r_score, f_score, m_score, class)
	SELECT run_id, customer_id, r, f, m_minor, r_score, f_score, m_score, class FROM customer_rfm;
DROP TABLE customer_rfm;
ALTER TABLE customer_rfm_rows RENAME TO customer_rfm;
CREATE INDEX customer_rfm_customer ON customer_rfm(customer_id);`,
	// 21: one model's history read customer by customer in time order (flows between two
	// dates, time in stage), which otherwise reads every model's events and sorts them.
	`CREATE INDEX model_events_model_customer ON model_events(model, customer_id, at);`,
}

// SchemaVersion is the number of the newest migration.
func SchemaVersion() int { return len(migrations) }

func (s *Store) expand(sql string) string {
	r := strings.NewReplacer("{{pk}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "{{json}}", "TEXT")
	if s.engine == Postgres {
		r = strings.NewReplacer("{{pk}}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "{{json}}", "JSONB")
	}
	sql = r.Replace(sql)
	return appendOnlyRE.ReplaceAllStringFunc(sql, func(m string) string {
		return appendOnlySQL(s.engine, appendOnlyRE.FindStringSubmatch(m)[1])
	})
}

// Migrate applies the migrations not yet applied, each in its own transaction, and returns how
// many it applied. Two processes migrating at once are serialised (PostgreSQL: advisory lock;
// SQLite: the write lock).
func (s *Store) Migrate(ctx context.Context) (int, error) {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := 0
	for i, m := range migrations {
		version := i + 1
		done := false
		err := s.InTx(ctx, func(tx *Tx) error {
			if s.engine == Postgres {
				if _, err := tx.exec(`SELECT pg_advisory_xact_lock(727001)`); err != nil {
					return err
				}
			}
			var n int
			if err := tx.row(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				done = true
				return nil
			}
			for _, stmt := range splitSQL(s.expand(m)) {
				if _, err := tx.exec(stmt); err != nil {
					return fmt.Errorf("migration %d: %w\n%s", version, err, stmt)
				}
			}
			_, err := tx.exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, ms(s.now()))
			return err
		})
		if err != nil {
			return applied, err
		}
		if !done {
			applied++
			slog.Info("applied migration", "version", version, "engine", s.engine)
		}
	}
	return applied, nil
}

// Version returns the newest applied migration.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// splitSQL cuts a migration into statements at ";", except inside a $$-quoted function body
// (PostgreSQL) or a trigger's BEGIN … END (SQLite).
func splitSQL(sql string) []string {
	var out []string
	cur := ""
	for _, p := range strings.Split(sql, ";") {
		cur += p
		up := strings.ToUpper(strings.TrimSpace(cur))
		inDollar := strings.Count(cur, "$$")%2 == 1
		inTrigger := strings.HasPrefix(up, "CREATE TRIGGER") && strings.Contains(up, " BEGIN ") && !strings.HasSuffix(up, "END")
		if inDollar || inTrigger {
			cur += ";"
			continue
		}
		if strings.TrimSpace(cur) != "" {
			out = append(out, cur)
		}
		cur = ""
	}
	if strings.TrimSpace(cur) != "" {
		out = append(out, cur)
	}
	return out
}
