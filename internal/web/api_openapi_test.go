package web

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// openAPIOps maps "METHOD path" to the operation object of every operation in the document.
func openAPIOps(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	ops := map[string]map[string]any{}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("document has no paths")
	}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
			}
		}
	}
	return ops
}

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q, want 3.x", v)
	}
	ops := openAPIOps(t, doc)
	inTable := map[string]bool{}
	opIDs := map[string]bool{}
	for _, rt := range apiRoutes {
		key := rt.Method + " " + rt.Pattern
		if inTable[key] {
			t.Errorf("route %s twice in the table", key)
		}
		inTable[key] = true
		if opIDs[rt.OperationID] {
			t.Errorf("operation id %s twice in the table", rt.OperationID)
		}
		opIDs[rt.OperationID] = true
		op, ok := ops[key]
		if !ok {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		if op["operationId"] != rt.OperationID {
			t.Errorf("%s: operationId %v in the document, %s in the table", key, op["operationId"], rt.OperationID)
		}
		if _, ok := op["responses"].(map[string]any)["401"]; !ok && !rt.Public {
			t.Errorf("%s: no 401 response documented", key)
		}
		if sec, ok := op["security"].([]any); rt.Public != (ok && len(sec) == 0) {
			t.Errorf("%s: public %v in the table but security %v in the document", key, rt.Public, op["security"])
		}
		if strings.Contains(rt.Pattern, "{id}") && !hasPathParam(doc, op, "id") {
			t.Errorf("%s: path parameter id not declared", key)
		}
	}
	var ingestion []string
	for key := range ops {
		path := strings.SplitN(key, " ", 2)[1]
		if strings.HasPrefix(path, "/v1/") {
			ingestion = append(ingestion, key)
			continue
		}
		if !inTable[key] {
			t.Errorf("openapi.json describes %s, which is not in the route table", key)
		}
	}
	sort.Strings(ingestion)
	if strings.Join(ingestion, ",") != "POST /v1/alias,POST /v1/batch,POST /v1/identify,POST /v1/track" {
		t.Errorf("ingestion operations %v", ingestion)
	}
	schemes, _ := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for _, s := range []string{"bearerAuth", "sessionCookie", "csrfHeader", "writeKey"} {
		if schemes[s] == nil {
			t.Errorf("security scheme %s missing", s)
		}
	}
	// Every $ref points at something in the document.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if resolveRef(doc, ref) == nil {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

func resolveRef(doc map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]
	}
	return cur
}

func hasPathParam(doc map[string]any, op map[string]any, name string) bool {
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		pm, _ := p.(map[string]any)
		if ref, ok := pm["$ref"].(string); ok {
			pm, _ = resolveRef(doc, ref).(map[string]any)
		}
		if pm["in"] == "path" && pm["name"] == name && pm["required"] == true {
			return true
		}
	}
	return false
}

func TestOpenAPIServedWithoutCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		r := e.call("GET", "/api/v1/openapi.json", "", nil)
		if r.Code != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || string(r.Body) != string(openAPIDoc) {
			t.Fatalf("GET /api/v1/openapi.json: %d %s", r.Code, r.Header)
		}
	})
}
