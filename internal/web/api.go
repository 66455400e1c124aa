package web

import (
	_ "embed"
	"net/http"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// apiRoute is one JSON API route. The mux is registered from apiRoutes and the OpenAPI
// document (openapi.json) describes the same routes; a test keeps the two in step.
type apiRoute struct {
	Method  string
	Pattern string // a net/http pattern path, e.g. /api/v1/customers/{id}
	// OperationID names the route's operation in openapi.json.
	OperationID string
	Handler     func(*Server, http.ResponseWriter, *http.Request)
	// Roles may call the route (admin always may); none means every signed-in role.
	Roles []staff.Role
	// Public routes need no credentials (only the OpenAPI document itself).
	Public bool
}

var (
	readers = []staff.Role{staff.Operator, staff.Sales}
	writers = []staff.Role{staff.Operator, staff.Sales}
	admins  = []staff.Role{staff.Admin}
)

// apiRoutes is every route under /api/v1.
var apiRoutes = []apiRoute{
	{"GET", "/api/v1/openapi.json", "getOpenAPI", (*Server).apiOpenAPI, nil, true},
	{"GET", "/api/v1/me", "getMe", (*Server).apiMe, nil, false},

	{"GET", "/api/v1/customers", "listCustomers", (*Server).apiListCustomers, readers, false},
	{"POST", "/api/v1/customers", "createCustomer", (*Server).apiCreateCustomer, writers, false},
	{"GET", "/api/v1/customers/{id}", "getCustomer", (*Server).apiGetCustomer, readers, false},
	{"PATCH", "/api/v1/customers/{id}", "updateCustomer", (*Server).apiUpdateCustomer, writers, false},
	{"GET", "/api/v1/customers/{id}/events", "listCustomerEvents", (*Server).apiCustomerEvents, readers, false},
	{"GET", "/api/v1/customers/{id}/orders", "listCustomerOrders", (*Server).apiCustomerOrders, readers, false},
	{"DELETE", "/api/v1/customers/{id}", "eraseCustomer", (*Server).apiEraseCustomer, admins, false},
	{"GET", "/api/v1/customers/{id}/export", "exportCustomer", (*Server).apiExportCustomer, admins, false},
	{"GET", "/api/v1/customers/{id}/owner", "getCustomerOwner", (*Server).apiGetOwner, readers, false},
	{"PUT", "/api/v1/customers/{id}/owner", "setCustomerOwner", (*Server).apiSetOwner, ownerAssigners, false},
	{"POST", "/api/v1/customers/owner", "bulkSetOwner", (*Server).apiBulkOwner, ownerAssigners, false},
	{"GET", "/api/v1/pool", "listPool", (*Server).apiListPool, poolUsers, false},
	{"POST", "/api/v1/pool/claim", "claimFromPool", (*Server).apiClaim, poolUsers, false},
	{"POST", "/api/v1/pool/release", "releaseToPool", (*Server).apiRelease, poolUsers, false},
	{"GET", "/api/v1/pool/config", "getPoolConfig", (*Server).apiGetPoolConfig, poolUsers, false},
	{"PUT", "/api/v1/pool/config", "putPoolConfig", (*Server).apiPutPoolConfig, ownerAssigners, false},
	{"GET", "/api/v1/transfers", "listTransfers", (*Server).apiListTransfers, ownerAssigners, false},
	{"POST", "/api/v1/transfers", "createTransfer", (*Server).apiCreateTransfer, ownerAssigners, false},
	{"GET", "/api/v1/transfers/{id}", "getTransfer", (*Server).apiGetTransfer, ownerAssigners, false},

	{"GET", "/api/v1/attributes", "listAttributes", (*Server).apiListAttributes, nil, false},
	{"POST", "/api/v1/attributes", "defineAttribute", (*Server).apiDefineAttribute, []staff.Role{staff.Operator}, false},

	{"GET", "/api/v1/staff", "listStaff", (*Server).apiListStaff, nil, false},
	{"POST", "/api/v1/staff", "createStaff", (*Server).apiCreateStaff, admins, false},
	{"PATCH", "/api/v1/staff/{id}", "updateStaff", (*Server).apiUpdateStaff, admins, false},

	{"GET", "/api/v1/keys", "listKeys", (*Server).apiListKeys, admins, false},
	{"POST", "/api/v1/keys", "createKey", (*Server).apiCreateKey, admins, false},
	{"DELETE", "/api/v1/keys/{id}", "revokeKey", (*Server).apiRevokeKey, admins, false},

	{"GET", "/api/v1/departments", "listDepartments", (*Server).apiListDepartments, nil, false},
	{"POST", "/api/v1/departments", "createDepartment", (*Server).apiCreateDepartment, admins, false},
	{"GET", "/api/v1/departments/{id}", "getDepartment", (*Server).apiGetDepartment, nil, false},
	{"PATCH", "/api/v1/departments/{id}", "updateDepartment", (*Server).apiUpdateDepartment, admins, false},
	{"DELETE", "/api/v1/departments/{id}", "deleteDepartment", (*Server).apiDeleteDepartment, admins, false},
	{"GET", "/api/v1/roles", "listRoles", (*Server).apiListRoles, admins, false},
	{"POST", "/api/v1/roles", "createRole", (*Server).apiCreateRole, admins, false},
	{"GET", "/api/v1/roles/{id}", "getRole", (*Server).apiGetRole, admins, false},
	{"PATCH", "/api/v1/roles/{id}", "updateRole", (*Server).apiUpdateRole, admins, false},
	{"DELETE", "/api/v1/roles/{id}", "deleteRole", (*Server).apiDeleteRole, admins, false},
	{"POST", "/api/v1/customers/{id}/reveal", "revealCustomer", (*Server).apiRevealCustomer, []staff.Role{staff.Operator}, false},

	{"GET", "/api/v1/audit", "listAudit", (*Server).apiListAudit, admins, false},
	{"GET", "/api/v1/me/sessions", "listMySessions", (*Server).apiMySessions, nil, false},
	{"DELETE", "/api/v1/me/sessions", "signOutEverywhere", (*Server).apiSignOutEverywhere, nil, false},
	{"DELETE", "/api/v1/staff/{id}/sessions", "revokeStaffSessions", (*Server).apiRevokeStaffSessions, admins, false},
	{"DELETE", "/api/v1/staff/{id}/totp", "resetStaffTOTP", (*Server).apiResetStaffTOTP, admins, false},
	{"GET", "/api/v1/settings/wecom", "getWeComSettings", (*Server).apiGetWeComSettings, admins, false},
	{"PUT", "/api/v1/settings/wecom", "putWeComSettings", (*Server).apiPutWeComSettings, admins, false},

	{"GET", "/api/v1/segments", "listSegments", (*Server).apiListSegments, readers, false},
	{"POST", "/api/v1/segments", "createSegment", (*Server).apiCreateSegment, segmentOperators, false},
	{"POST", "/api/v1/segments/count", "countSegmentTree", (*Server).apiCountSegment, readers, false},
	{"POST", "/api/v1/segments/explain", "explainSegmentTree", (*Server).apiExplainTree, readers, false},
	{"GET", "/api/v1/segments/{id}", "getSegment", (*Server).apiGetSegment, readers, false},
	{"PATCH", "/api/v1/segments/{id}", "updateSegment", (*Server).apiUpdateSegment, segmentOperators, false},
	{"DELETE", "/api/v1/segments/{id}", "deleteSegment", (*Server).apiDeleteSegment, segmentOperators, false},
	{"GET", "/api/v1/segments/{id}/members", "listSegmentMembers", (*Server).apiSegmentMembers, readers, false},
	{"GET", "/api/v1/segments/{id}/export", "exportSegment", (*Server).apiExportSegment, segmentOperators, false},
	{"GET", "/api/v1/segments/{id}/explain", "explainSegment", (*Server).apiExplainSegment, readers, false},
	{"GET", "/api/v1/segments/{id}/history", "getSegmentHistory", (*Server).apiSegmentHistory, segmentOperators, false},

	{"GET", "/api/v1/tag-groups", "listTagGroups", (*Server).apiListTagGroups, readers, false},
	{"POST", "/api/v1/tag-groups", "createTagGroup", (*Server).apiCreateTagGroup, tagEditors, false},
	{"PATCH", "/api/v1/tag-groups/{id}", "updateTagGroup", (*Server).apiUpdateTagGroup, tagEditors, false},
	{"DELETE", "/api/v1/tag-groups/{id}", "deleteTagGroup", (*Server).apiDeleteTagGroup, tagEditors, false},
	{"GET", "/api/v1/tags", "listTags", (*Server).apiListTags, readers, false},
	{"POST", "/api/v1/tags", "createTag", (*Server).apiCreateTag, tagEditors, false},
	{"PATCH", "/api/v1/tags/{id}", "updateTag", (*Server).apiUpdateTag, tagEditors, false},
	{"DELETE", "/api/v1/tags/{id}", "deleteTag", (*Server).apiDeleteTag, tagEditors, false},
	{"POST", "/api/v1/tags/assign", "assignTags", (*Server).apiBulkAssignTags, tagEditors, false},
	{"POST", "/api/v1/tags/remove", "removeTags", (*Server).apiBulkRemoveTags, tagEditors, false},
	{"GET", "/api/v1/customers/{id}/tags", "listCustomerTags", (*Server).apiCustomerTags, readers, false},
	{"POST", "/api/v1/customers/{id}/tags", "assignCustomerTags", (*Server).apiAssignCustomerTags, writers, false},
	{"DELETE", "/api/v1/customers/{id}/tags/{tagId}", "removeCustomerTag", (*Server).apiRemoveCustomerTag, writers, false},
	{"GET", "/api/v1/customers/{id}/tag-history", "listCustomerTagHistory", (*Server).apiCustomerTagHistory, readers, false},

	{"GET", "/api/v1/tag-rules", "listTagRules", (*Server).apiListTagRules, readers, false},
	{"POST", "/api/v1/tag-rules", "createTagRule", (*Server).apiCreateTagRule, tagEditors, false},
	{"GET", "/api/v1/tag-rules/{id}", "getTagRule", (*Server).apiGetTagRule, readers, false},
	{"PATCH", "/api/v1/tag-rules/{id}", "updateTagRule", (*Server).apiUpdateTagRule, tagEditors, false},
	{"DELETE", "/api/v1/tag-rules/{id}", "deleteTagRule", (*Server).apiDeleteTagRule, tagEditors, false},
	{"POST", "/api/v1/tag-rules/{id}/backfill", "startTagRuleBackfill", (*Server).apiStartTagRuleBackfill, tagEditors, false},
	{"GET", "/api/v1/tag-rules/{id}/backfill", "getTagRuleBackfill", (*Server).apiTagRuleBackfill, readers, false},

	{"GET", "/api/v1/models/rfm/config", "getRFMConfig", (*Server).apiGetRFMConfig, modelOperators, false},
	{"PUT", "/api/v1/models/rfm/config", "putRFMConfig", (*Server).apiPutRFMConfig, modelOperators, false},
	{"POST", "/api/v1/models/rfm/run", "runRFM", (*Server).apiRunRFM, modelOperators, false},
	{"GET", "/api/v1/models/rfm", "getRFM", (*Server).apiGetRFM, readers, false},
	{"GET", "/api/v1/models/rfm/moves", "getRFMMoves", (*Server).apiRFMMoves, readers, false},
	{"GET", "/api/v1/models/pareto", "getPareto", (*Server).apiPareto, modelOperators, false},
	{"GET", "/api/v1/models/lifecycle/config", "getLifecycleConfig", (*Server).apiGetLifecycleConfig, modelOperators, false},
	{"PUT", "/api/v1/models/lifecycle/config", "putLifecycleConfig", (*Server).apiPutLifecycleConfig, modelOperators, false},
	{"POST", "/api/v1/models/lifecycle/run", "runLifecycle", (*Server).apiRunLifecycle, modelOperators, false},
	{"GET", "/api/v1/models/lifecycle", "getLifecycle", (*Server).apiGetLifecycle, readers, false},
	{"GET", "/api/v1/models/journey/config", "getJourneyConfig", (*Server).apiGetJourneyConfig, modelOperators, false},
	{"PUT", "/api/v1/models/journey/config", "putJourneyConfig", (*Server).apiPutJourneyConfig, modelOperators, false},
	{"POST", "/api/v1/models/journey/run", "runJourney", (*Server).apiRunJourney, modelOperators, false},
	{"GET", "/api/v1/models/journey", "getJourney", (*Server).apiGetJourney, readers, false},
	{"GET", "/api/v1/models/aipl/config", "getAIPLConfig", (*Server).apiGetAIPLConfig, modelOperators, false},
	{"PUT", "/api/v1/models/aipl/config", "putAIPLConfig", (*Server).apiPutAIPLConfig, modelOperators, false},
	{"POST", "/api/v1/models/aipl/run", "runAIPL", (*Server).apiRunAIPL, modelOperators, false},
	{"GET", "/api/v1/models/aipl", "getAIPL", (*Server).apiGetAIPL, readers, false},
	{"GET", "/api/v1/models/{model}/flows", "getStageFlows", (*Server).apiStageFlows, readers, false},
	{"GET", "/api/v1/models/{model}/durations", "getStageDurations", (*Server).apiStageDurations, readers, false},
	{"GET", "/api/v1/models/schedule", "getModelSchedule", (*Server).apiGetSchedule, modelOperators, false},
	{"PUT", "/api/v1/models/schedule", "putModelSchedule", (*Server).apiPutSchedule, modelOperators, false},
	{"POST", "/api/v1/models/schedule/run", "runModelSchedule", (*Server).apiRunSchedule, modelOperators, false},
	{"GET", "/api/v1/customers/{id}/models", "getCustomerModels", (*Server).apiGetCustomerModels, readers, false},
	{"GET", "/api/v1/models/{model}/tags", "getModelTags", (*Server).apiGetModelTags, modelOperators, false},
	{"PUT", "/api/v1/models/{model}/tags", "putModelTags", (*Server).apiPutModelTags, modelOperators, false},
	{"GET", "/api/v1/models/tiers/config", "getTierConfig", (*Server).apiGetTierConfig, modelOperators, false},
	{"PUT", "/api/v1/models/tiers/config", "putTierConfig", (*Server).apiPutTierConfig, modelOperators, false},
	{"POST", "/api/v1/models/tiers/run", "runTiers", (*Server).apiRunTiers, modelOperators, false},
	{"POST", "/api/v1/models/tiers/preview", "previewTiers", (*Server).apiPreviewTiers, modelOperators, false},
	{"GET", "/api/v1/models/tiers", "getTiers", (*Server).apiGetTiers, readers, false},
	{"GET", "/api/v1/models/points/config", "getPointsConfig", (*Server).apiGetPointsConfig, modelOperators, false},
	{"PUT", "/api/v1/models/points/config", "putPointsConfig", (*Server).apiPutPointsConfig, modelOperators, false},
	{"POST", "/api/v1/models/points/run", "runPoints", (*Server).apiRunPoints, modelOperators, false},
	{"GET", "/api/v1/customers/{id}/points", "getCustomerPoints", (*Server).apiGetCustomerPoints, readers, false},
	{"POST", "/api/v1/customers/{id}/points", "changeCustomerPoints", (*Server).apiPostCustomerPoints, writers, false},
	{"GET", "/api/v1/gates", "listGates", (*Server).apiListGates, readers, false},
	{"POST", "/api/v1/gates", "createGate", (*Server).apiCreateGate, modelOperators, false},
	{"GET", "/api/v1/gates/{id}", "getGate", (*Server).apiGetGate, readers, false},
	{"PUT", "/api/v1/gates/{id}", "updateGate", (*Server).apiUpdateGate, modelOperators, false},
	{"DELETE", "/api/v1/gates/{id}", "deleteGate", (*Server).apiDeleteGate, modelOperators, false},
	{"GET", "/api/v1/gates/{id}/check", "checkGate", (*Server).apiCheckGate, readers, false},

	{"GET", "/api/v1/analytics/metrics", "getAnalyticsMetrics", (*Server).apiAnalyticsMetrics, analyticsReaders, false},
	{"GET", "/api/v1/analytics/cohorts", "getAnalyticsCohorts", (*Server).apiAnalyticsCohorts, analyticsReaders, false},
	{"POST", "/api/v1/analytics/funnel", "postAnalyticsFunnel", (*Server).apiAnalyticsFunnel, analyticsReaders, false},
	// The same reports at the paths BI tools are given (docs/analytics.md).
	{"GET", "/api/v1/metrics", "getMetrics", (*Server).apiAnalyticsMetrics, analyticsReaders, false},
	{"GET", "/api/v1/cohorts", "getCohorts", (*Server).apiAnalyticsCohorts, analyticsReaders, false},
	{"POST", "/api/v1/funnels", "postFunnel", (*Server).apiAnalyticsFunnel, analyticsReaders, false},

	{"GET", "/api/v1/goals", "listGoals", (*Server).apiListGoals, analyticsReaders, false},
	{"POST", "/api/v1/goals", "createGoal", (*Server).apiCreateGoal, goalEditors, false},
	{"GET", "/api/v1/goals/{id}", "getGoal", (*Server).apiGetGoal, analyticsReaders, false},
	{"PUT", "/api/v1/goals/{id}", "updateGoal", (*Server).apiUpdateGoal, goalEditors, false},
	{"DELETE", "/api/v1/goals/{id}", "deleteGoal", (*Server).apiDeleteGoal, goalEditors, false},
	{"GET", "/api/v1/reports/weekly", "getWeeklyReport", (*Server).apiWeeklyReport, analyticsReaders, false},
	{"GET", "/api/v1/reports/weekly/settings", "getWeeklyReportSettings", (*Server).apiGetReportSettings, reportEditors, false},
	{"PUT", "/api/v1/reports/weekly/settings", "putWeeklyReportSettings", (*Server).apiPutReportSettings, reportEditors, false},
	{"POST", "/api/v1/reports/weekly/send", "sendWeeklyReport", (*Server).apiSendWeeklyReport, reportEditors, false},

	{"GET", "/api/v1/sops", "listSOPs", (*Server).apiListSOPs, sopOperators, false},
	{"POST", "/api/v1/sops", "createSOP", (*Server).apiCreateSOP, sopOperators, false},
	{"GET", "/api/v1/sops/{id}", "getSOP", (*Server).apiGetSOP, sopOperators, false},
	{"PUT", "/api/v1/sops/{id}", "updateSOP", (*Server).apiUpdateSOP, sopOperators, false},
	{"DELETE", "/api/v1/sops/{id}", "archiveSOP", (*Server).apiArchiveSOP, sopOperators, false},
	{"POST", "/api/v1/sops/{id}/enable", "enableSOP", (*Server).apiEnableSOP, sopOperators, false},
	{"POST", "/api/v1/sops/{id}/pause", "pauseSOP", (*Server).apiPauseSOP, sopOperators, false},
	{"GET", "/api/v1/sops/{id}/versions", "listSOPVersions", (*Server).apiSOPVersions, sopOperators, false},
	{"GET", "/api/v1/sops/{id}/preview", "previewSOP", (*Server).apiPreviewSOP, sopOperators, false},
	{"GET", "/api/v1/sops/{id}/dry-run", "dryRunSOP", (*Server).apiDryRunSOP, sopOperators, false},
	{"POST", "/api/v1/sops/{id}/start", "startSOP", (*Server).apiStartSOP, sopOperators, false},
	{"GET", "/api/v1/tasks", "listTasks", (*Server).apiListTasks, nil, false},
	{"POST", "/api/v1/tasks/{id}/done", "finishTask", (*Server).apiTaskDone, nil, false},
	{"POST", "/api/v1/tasks/{id}/skip", "skipTask", (*Server).apiTaskSkip, nil, false},

	{"GET", "/api/v1/surveys", "listSurveys", (*Server).apiListSurveys, readers, false},
	{"POST", "/api/v1/surveys", "createSurvey", (*Server).apiCreateSurvey, surveyEditors, false},
	{"GET", "/api/v1/surveys/{id}", "getSurvey", (*Server).apiGetSurvey, readers, false},
	{"PUT", "/api/v1/surveys/{id}", "updateSurvey", (*Server).apiUpdateSurvey, surveyEditors, false},
	{"DELETE", "/api/v1/surveys/{id}", "deleteSurvey", (*Server).apiDeleteSurvey, surveyEditors, false},
	{"POST", "/api/v1/surveys/{id}/close", "closeSurvey", (*Server).apiCloseSurvey, surveyEditors, false},
	{"GET", "/api/v1/surveys/{id}/responses", "listSurveyResponses", (*Server).apiSurveyResponses, readers, false},
	{"GET", "/api/v1/surveys/{id}/results", "getSurveyResults", (*Server).apiSurveyResults, readers, false},
	{"GET", "/api/v1/surveys/{id}/export", "exportSurvey", (*Server).apiExportSurvey, surveyEditors, false},
	{"GET", "/api/v1/surveys/{id}/link", "getSurveyLink", (*Server).apiSurveyLink, readers, false},
	{"GET", "/api/v1/contents", "listContents", (*Server).apiListContents, contentReaders, false},
	{"POST", "/api/v1/contents", "createContent", (*Server).apiCreateContent, contentEditors, false},
	{"GET", "/api/v1/contents/{id}", "getContent", (*Server).apiGetContent, contentReaders, false},
	{"PUT", "/api/v1/contents/{id}", "updateContent", (*Server).apiUpdateContent, contentEditors, false},
	{"DELETE", "/api/v1/contents/{id}", "archiveContent", moveContent("archive"), contentEditors, false},
	{"POST", "/api/v1/contents/{id}/submit", "submitContent", moveContent("submit"), contentEditors, false},
	{"POST", "/api/v1/contents/{id}/approve", "approveContent", moveContent("approve"), contentEditors, false},
	{"POST", "/api/v1/contents/{id}/reject", "rejectContent", moveContent("reject"), contentEditors, false},
	{"POST", "/api/v1/contents/{id}/publish", "publishContent", moveContent("publish"), contentEditors, false},
	{"POST", "/api/v1/contents/{id}/archive", "archiveContentAction", moveContent("archive"), contentEditors, false},
	{"GET", "/api/v1/contents/{id}/comments", "listContentComments", (*Server).apiContentComments, contentReaders, false},
	{"POST", "/api/v1/contents/{id}/comments", "addContentComment", (*Server).apiAddContentComment, contentEditors, false},
	{"GET", "/api/v1/contents/{id}/versions", "listContentVersions", (*Server).apiContentVersions, contentReaders, false},
	{"GET", "/api/v1/contents/{id}/stats", "getContentStats", (*Server).apiContentStats, contentReaders, false},
	{"GET", "/api/v1/content-folders", "listContentFolders", (*Server).apiListContentFolders, contentReaders, false},
	{"POST", "/api/v1/content-folders", "createContentFolder", (*Server).apiCreateContentFolder, contentEditors, false},
	{"PUT", "/api/v1/content-folders/{id}", "updateContentFolder", (*Server).apiUpdateContentFolder, contentEditors, false},
	{"DELETE", "/api/v1/content-folders/{id}", "deleteContentFolder", (*Server).apiDeleteContentFolder, contentEditors, false},
	{"POST", "/api/v1/content-images", "uploadContentImage", (*Server).apiUploadContentImage, contentEditors, false},
	{"GET", "/api/v1/content-images/{id}", "getContentImage", (*Server).apiContentImage, contentReaders, false},
	{"GET", "/api/v1/personas", "listPersonas", (*Server).apiListPersonas, contentReaders, false},
	{"POST", "/api/v1/personas", "createPersona", (*Server).apiCreatePersona, contentEditors, false},
	{"GET", "/api/v1/personas/{id}", "getPersona", (*Server).apiGetPersona, contentReaders, false},
	{"PUT", "/api/v1/personas/{id}", "updatePersona", (*Server).apiUpdatePersona, contentEditors, false},
	{"DELETE", "/api/v1/personas/{id}", "deletePersona", (*Server).apiDeletePersona, contentEditors, false},
	{"GET", "/api/v1/channel-codes", "listChannelCodes", (*Server).apiListChannelCodes, channelOperators, false},
	{"POST", "/api/v1/channel-codes", "createChannelCode", (*Server).apiCreateChannelCode, channelOperators, false},
	{"GET", "/api/v1/channel-codes/{id}", "getChannelCode", (*Server).apiGetChannelCode, channelOperators, false},
	{"PUT", "/api/v1/channel-codes/{id}", "updateChannelCode", (*Server).apiUpdateChannelCode, channelOperators, false},
	{"DELETE", "/api/v1/channel-codes/{id}", "deleteChannelCode", (*Server).apiDeleteChannelCode, channelOperators, false},
	{"GET", "/api/v1/channel-codes/{id}/stats", "getChannelCodeStats", (*Server).apiChannelCodeStats, channelOperators, false},
}

// apiBodyLimit caps every JSON API request body.
const apiBodyLimit = 1 << 20

func (s *Server) routesAPI(mux *http.ServeMux) {
	for _, rt := range apiRoutes {
		h := func(w http.ResponseWriter, r *http.Request) { rt.Handler(s, w, r) }
		if !rt.Public {
			h = withRoutePermission(rt.Method, rt.Pattern, s.api(h, rt.Roles...))
		}
		mux.Handle(rt.Method+" "+rt.Pattern, s.audited(rt.Method+" "+rt.Pattern, http.HandlerFunc(h)))
	}
	mux.HandleFunc("/api/", apiNoRoute)
}

// apiNoRoute answers requests that match no API route in JSON (not with the console's HTML):
// 405 with Allow when the path exists under another method, 404 otherwise.
func apiNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range apiRoutes {
		if apiPathMatch(rt.Pattern, r.URL.Path) {
			allow = append(allow, rt.Method)
			if rt.Method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here (allowed: "+strings.Join(allow, ", ")+")", "")
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such API route", "")
}

// apiPathMatch reports whether path matches pattern segment by segment, {name} matching any
// one segment.
func apiPathMatch(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !(strings.HasPrefix(ps[i], "{") && xs[i] != "") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

//go:embed openapi.json
var openAPIDoc []byte

// apiOpenAPI serves the OpenAPI document. It is public: it describes the API and holds no data.
func (s *Server) apiOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDoc)
}

// pathID reads the positive integer path parameter {id}; a malformed one answers 404 (no such
// resource can exist).
func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, "not_found", "not found", "")
		return 0, false
	}
	return id, true
}

// queryInt reads an optional integer query parameter: absent is def, not an integer is 400,
// outside [lo, hi] is 422.
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, lo, hi int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", name+" must be an integer", name)
		return 0, false
	}
	if n < lo || n > hi {
		writeError(w, http.StatusUnprocessableEntity, "invalid", name+" must be between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi), name)
		return 0, false
	}
	return n, true
}

// queryBool reads an optional flag query parameter: absent, 0 or false is false, 1 or true is
// true, anything else is 400.
func queryBool(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	switch r.URL.Query().Get(name) {
	case "", "0", "false":
		return false, true
	case "1", "true":
		return true, true
	}
	writeError(w, http.StatusBadRequest, "invalid_parameter", name+" must be 1 or 0", name)
	return false, false
}
