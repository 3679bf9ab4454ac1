package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/basiq-bff/bff/api"
)

// contract checks responses against api/openapi.yaml. A route the document does not list
// may only answer 404 or 405 (an unknown path or method); every status, header and body of a
// listed operation must match the document, and an undocumented status fails.
type contract struct {
	doc    *openapi3.T
	router routers.Router
}

func loadContract(t testing.TB) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(api.OpenAPI))
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	// Public and admin paths do not overlap, so one router serves both listeners whatever
	// port a test replica was given.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return &contract{doc: doc, router: router}
}

// check returns why the response to req does not match the contract, or nil.
func (c *contract) check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if !errors.Is(err, routers.ErrPathNotFound) && !errors.Is(err, routers.ErrMethodNotAllowed) &&
			!strings.Contains(err.Error(), routers.ErrPathNotFound.Error()) && !strings.Contains(err.Error(), routers.ErrMethodNotAllowed.Error()) {
			return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
		}
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s answered %d but the route is missing from api/openapi.yaml", req.Method, req.URL.Path, status)
		}
		return c.checkBareError(req, header, body)
	}
	// The admin paths (those with their own servers) are unknown paths on the public
	// listener.
	if len(route.PathItem.Servers) > 0 && status == http.StatusNotFound {
		return c.checkBareError(req, header, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
		},
		Status: status,
		Header: header,
		Body:   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
		},
	}
	if req.Method == http.MethodHead {
		// The library leaves HEAD alone; the status must still be documented.
		if route.Operation.Responses.Status(status) == nil {
			return fmt.Errorf("HEAD %s answered %d, which api/openapi.yaml does not list", req.URL.Path, status)
		}
		return nil
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s answered %d against api/openapi.yaml: %w", req.Method, req.URL.Path, status, err)
	}
	return nil
}

// checkBareError checks the answer to an unknown path or method: a JSON body there must be
// the error envelope with a documented code.
func (c *contract) checkBareError(req *http.Request, header http.Header, body []byte) error {
	if !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		return nil // the admin listener's plain-text 404
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("%s %s: the error body is not JSON: %w", req.Method, req.URL.Path, err)
	}
	schema := c.doc.Components.Schemas["ErrorBody"].Value
	if err := schema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%s %s: the error body does not match ErrorBody: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// contractTransport checks every response a test client receives.
type contractTransport struct {
	t    testing.TB
	c    *contract
	next http.RoundTripper
}

func (ct contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := ct.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the caller sees the short body and reports it
	}
	if err := ct.c.check(req, resp.StatusCode, resp.Header, body); err != nil {
		ct.t.Errorf("contract: %v", err)
	}
	return resp, nil
}

// TestContractDocument: the document is valid OpenAPI 3.1, lists every route of the README's
// table and every error code the BFF sends, and the admin listener serves it as it is.
func TestContractDocument(t *testing.T) {
	c := loadContract(t)
	if err := c.doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	if !c.doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1", c.doc.OpenAPI)
	}
	routes := []string{
		"GET /", "GET /{asset}", "POST /auth/login", "POST /auth/logout", "GET /auth/tenants", "GET /auth/me",
		"POST /connect/consent", "GET /connect/return", "GET /auth/oidc/start", "GET /auth/oidc/callback",
		"POST /auth/oidc/backchannel-logout", "GET /client-token",
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.yaml",
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		item := c.doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("api/openapi.yaml has no %s", r)
		}
	}
	consent := c.doc.Paths.Value("/connect/consent").Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	for _, p := range []string{"action", "institutionId", "connectionId"} {
		if consent.Properties[p] == nil {
			t.Errorf("POST /connect/consent's body has no %q", p)
		}
	}
	codes := map[string]bool{}
	for _, v := range c.doc.Components.Schemas["ErrorCode"].Value.Enum {
		codes[v.(string)] = true
	}
	for _, code := range []string{"invalid_request", "invalid_state", "invalid_credentials", "unauthenticated", "csrf_failed",
		"forbidden", "not_found", "method_not_allowed", "too_many_attempts", "rate_limited", "upstream_rejected",
		"upstream_unavailable", "store_unavailable"} {
		if !codes[code] {
			t.Errorf("ErrorCode does not list %q", code)
		}
	}
	for _, h := range []string{"X-Request-ID", "Retry-After", "Set-Cookie"} {
		if c.doc.Components.Headers[h] == nil {
			t.Errorf("components.headers has no %s", h)
		}
	}
	if c.doc.Components.Parameters["X-CSRF"] == nil || c.doc.Components.SecuritySchemes["session"] == nil {
		t.Error("the X-CSRF header or the session cookie is not described")
	}

	r := newStack(t, stackOptions{}).start()
	resp := newClient(t, r.admin).do("GET", "/openapi.yaml", "", nil)
	if resp.status != 200 || string(resp.body) != api.OpenAPI || resp.header.Get("Content-Type") != "application/yaml" {
		t.Errorf("admin GET /openapi.yaml = %d %q, %d bytes; want 200 application/yaml with the document",
			resp.status, resp.header.Get("Content-Type"), len(resp.body))
	}
	// A plain client: the public listener's 404 for an admin path is not part of the contract.
	pub, err := http.Get(r.url + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pub.Body.Close()
	if pub.StatusCode != 404 {
		t.Errorf("public GET /openapi.yaml = %d, want 404: the document belongs to the admin listener", pub.StatusCode)
	}
}

// TestContractCatchesDrift proves the checker fails what it should: a route the document
// does not list, a status it does not list, a body of the wrong shape, and a missing
// X-Request-ID.
func TestContractCatchesDrift(t *testing.T) {
	c := loadContract(t)
	reqID := func(h http.Header) http.Header {
		h.Set("X-Request-ID", "abc123")
		return h
	}
	jsonHeader := func() http.Header { return reqID(http.Header{"Content-Type": {"application/json"}}) }
	tests := []struct {
		name    string
		method  string
		path    string
		status  int
		header  http.Header
		body    string
		wantErr string
	}{
		{name: "a valid token", method: "GET", path: "/client-token", status: 200,
			header: func() http.Header { h := jsonHeader(); h.Set("Cache-Control", "no-store"); return h }(),
			body:   `{"access_token":"x.y.z","token_type":"Bearer","expires_in":3599}`},
		{name: "an unknown route answered 200", method: "GET", path: "/auth/whoami", status: 200, header: jsonHeader(), body: `{}`,
			wantErr: "missing from api/openapi.yaml"},
		{name: "an unknown path answered 404", method: "GET", path: "/a/b", status: 404, header: jsonHeader(),
			body: `{"error":{"code":"not_found","message":"Not Found."}}`},
		{name: "an undocumented code", method: "GET", path: "/a/b", status: 404, header: jsonHeader(),
			body: `{"error":{"code":"gone_fishing","message":"x"}}`, wantErr: "does not match ErrorBody"},
		{name: "an undocumented status", method: "GET", path: "/client-token", status: 418, header: jsonHeader(),
			body: `{"error":{"code":"not_found","message":"x"}}`, wantErr: "status is not supported"},
		{name: "the wrong code for the status", method: "GET", path: "/client-token", status: 401, header: jsonHeader(),
			body: `{"error":{"code":"csrf_failed","message":"x"}}`, wantErr: "unauthenticated"},
		{name: "429 without Retry-After", method: "GET", path: "/client-token", status: 429, header: jsonHeader(),
			body: `{"error":{"code":"rate_limited","message":"x"}}`, wantErr: "Retry-After"},
		{name: "no X-Request-ID", method: "GET", path: "/auth/tenants", status: 200,
			header: http.Header{"Content-Type": {"application/json"}}, body: `{"tenants":[]}`, wantErr: "X-Request-ID"},
		{name: "a token with an extra field", method: "GET", path: "/client-token", status: 200,
			header: func() http.Header { h := jsonHeader(); h.Set("Cache-Control", "no-store"); return h }(),
			body:   `{"access_token":"x","token_type":"Bearer","expires_in":3599,"api_key":"k"}`, wantErr: "api_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://127.0.0.1:1"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.check(req, tc.status, tc.header, []byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("check: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("check = %v, want an error mentioning %q", err, tc.wantErr)
			}
		})
	}
}
