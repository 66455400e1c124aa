// Package audit names the actions siyu writes to its audit log: who did what, when and from
// where. The log itself is kept by the store (store.AppendAudit, store.ListAudit) and cannot be
// changed or deleted through the application.
package audit

// The actions, as "area.verb". Every place that writes an entry uses one of these, so that an
// admin can filter by them and a test can list them.
const (
	SignIn          = "auth.sign_in"          // a staff member signed in (after the second factor, if any)
	SignInFailed    = "auth.sign_in_failed"   // a wrong login, password or second factor; Detail["login"] is the login tried
	SignOut         = "auth.sign_out"         // a staff member signed out of this browser
	SignOutAll      = "auth.sign_out_all"     // a staff member signed out of every browser
	SessionsRevoked = "auth.sessions_revoked" // an admin signed a staff member out everywhere
	TOTPEnabled     = "auth.totp_enable"      // two-factor sign-in turned on
	TOTPDisabled    = "auth.totp_disable"     // two-factor sign-in turned off (by the person or reset by an admin)
	RecoveryUsed    = "auth.recovery_code"    // a recovery code was spent at sign-in
	PasswordChange  = "auth.password_change"  // a password was changed (own or by an admin)

	StaffCreate  = "staff.create"  // a staff account was made
	StaffUpdate  = "staff.update"  // name, email or department changed
	StaffDisable = "staff.disable" // an account was disabled (and signed out everywhere)
	StaffEnable  = "staff.enable"  // a disabled account was enabled again
	RoleUpdate   = "role.update"   // a staff member's role, a custom role or its permissions changed

	KeyCreate = "key.create" // an API or write key was made
	KeyRevoke = "key.revoke" // a key was revoked

	SecretChange   = "settings.secret_change" // an integration secret (WeCom secret, token, AES key) was set or changed
	SettingsChange = "settings.change"        // another setting changed

	CustomerExport  = "customer.export"  // customers left the system: a segment export, a CSV/Excel download, a data-access export
	AnalyticsExport = "analytics.export" // a report downloaded as CSV
	CustomerDelete  = "customer.delete"  // a customer was erased (right to erasure)
	CustomerReveal  = "customer.reveal"  // a masked phone or email was revealed
	OwnerTransfer   = "customer.transfer"

	TagsBulkAssign = "tags.bulk_assign" // a tag was added to many customers at once
	TagsBulkRemove = "tags.bulk_remove" // a tag was removed from many customers at once
	OwnerBulkSet   = "owner.bulk_set"   // many customers were given a new owner at once

	TagDelete      = "tag.delete"
	TagGroupDelete = "tag_group.delete"
	TagRuleDelete  = "tag_rule.delete"
	SegmentDelete  = "segment.delete"
	SOPDelete      = "sop.delete"
	SurveyDelete   = "survey.delete"
	ContentDelete  = "content.delete" // a content item, a folder or a persona (the target says which)
	ChannelDelete  = "channel_code.delete"
	DeptDelete     = "department.delete"
	GateDelete     = "gate.delete"
	GoalDelete     = "goal.delete"
)

// Actions lists every action above, for filters and the console's action picker.
var Actions = []string{
	SignIn, SignInFailed, SignOut, SignOutAll, SessionsRevoked, TOTPEnabled, TOTPDisabled, RecoveryUsed, PasswordChange,
	StaffCreate, StaffUpdate, StaffDisable, StaffEnable, RoleUpdate,
	KeyCreate, KeyRevoke,
	SecretChange, SettingsChange,
	CustomerExport, AnalyticsExport, CustomerDelete, CustomerReveal, OwnerTransfer,
	TagsBulkAssign, TagsBulkRemove, OwnerBulkSet,
	TagDelete, TagGroupDelete, TagRuleDelete, SegmentDelete, SOPDelete,
	SurveyDelete, ContentDelete, ChannelDelete, DeptDelete, GateDelete, GoalDelete,
}
