package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// apiError is one error in Basiq's envelope ({"type":"list","data":[…]}). source is raw JSON: "" leaves the
// member out, and "{}" and "null" are kept as such, because the recorded fixtures use all three.
type apiError struct {
	status     int
	code       string
	title      string
	detail     string
	source     string
	retryAfter time.Duration
}

// writeError answers with the envelope: one item, a fresh UUIDv4 correlationId.
func writeError(w http.ResponseWriter, ae apiError) {
	type item struct {
		Type   string          `json:"type"`
		Code   string          `json:"code"`
		Title  string          `json:"title,omitempty"`
		Detail string          `json:"detail,omitempty"`
		Source json.RawMessage `json:"source,omitempty"`
	}
	body := struct {
		Type          string `json:"type"`
		CorrelationID string `json:"correlationId"`
		Data          []item `json:"data"`
	}{
		Type:          "list",
		CorrelationID: newUUID(),
		Data:          []item{{Type: "error", Code: ae.code, Title: ae.title, Detail: ae.detail, Source: json.RawMessage(ae.source)}},
	}
	if ae.retryAfter > 0 {
		secs := int64((ae.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeJSON(w, ae.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed types are marshalled; this cannot happen short of a bug.
		http.Error(w, "emulator: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// source builds the {"parameter","pointer"} member the basiq-version fixture uses.
func source(parameter, pointer string) string {
	b, _ := json.Marshal(struct {
		Parameter string `json:"parameter"`
		Pointer   string `json:"pointer"`
	}{parameter, pointer})
	return string(b)
}

// The errors below are the exact recorded or documented bodies where a source exists (see the
// tags) and the emulator's [inferred] choice where none does.

// errVersionMissing: [fixture] postTokenBadRequest.json.
func errVersionMissing() apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid",
		detail: "Basiq-version must be specified in HTTP request header", source: source("basiq-version", "header/basiq-version")}
}

// errVersionRetired: [doc] detail text; code inferred.
func errVersionRetired(v string) apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid",
		detail: "Version " + v + " is no longer supported. Please upgrade to the latest version", source: source("basiq-version", "header/basiq-version")}
}

// errVersionInvalid: [inferred].
func errVersionInvalid() apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid",
		detail: "Basiq-version is not valid", source: source("basiq-version", "header/basiq-version")}
}

// errAuthMissing: [doc] detail; code, title and source by analogy with the version fixture.
func errAuthMissing() apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-supplied", title: "Required parameter not supplied",
		detail: "Authorization header parameter is required", source: source("Authorization", "header/Authorization")}
}

// errAuthInvalid: [doc] detail; the rest inferred.
func errAuthInvalid() apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid",
		detail: "Invalid authorization header", source: source("Authorization", "header/Authorization")}
}

// errUnknownKey: [fixture] postTokenNotFound.json; note the code is parameter-not-valid.
func errUnknownKey() apiError {
	return apiError{status: http.StatusNotFound, code: "parameter-not-valid", title: "We have encountered an error",
		detail: "Unable to authenticate. Please, check your API key"}
}

// errAccountDisabled: [doc] detail; code and title inferred.
func errAccountDisabled() apiError {
	return apiError{status: http.StatusForbidden, code: "forbidden-access", title: "Forbidden Access",
		detail: "Your account has been disabled. Please contact Basiq support."}
}

// errRequestNotValid: per-IP /token throttle. [doc] status and title; detail inferred.
func errRequestNotValid() apiError {
	return apiError{status: http.StatusForbidden, code: "request-not-valid", title: "Invalid request",
		detail: "Too many token requests from this IP address within a 5 minute period."}
}

// errTooManyRequests: per-key /token throttle. [doc] status and title; detail inferred.
func errTooManyRequests() apiError {
	return apiError{status: http.StatusTooManyRequests, code: "too-many-requests", title: "Too many requests.",
		detail: "Query limit reached. Reduce request frequency and try again later."}
}

// errMethodNotAllowed: [inferred]; code from the global catalogue.
func errMethodNotAllowed() apiError {
	return apiError{status: http.StatusMethodNotAllowed, code: "method-not-allowed", title: "Not Allowed",
		detail: "Requested method is not allowed."}
}

// errUnsupportedContentType: [inferred]; code from the global catalogue.
func errUnsupportedContentType() apiError {
	return apiError{status: http.StatusBadRequest, code: "unsupported-content-type", title: "Invalid Attribute",
		detail: "Requested content type is not supported."}
}

// errInvalidContent: a body that cannot be read or parsed. [inferred]
func errInvalidContent(detail string) apiError {
	return apiError{status: http.StatusBadRequest, code: "invalid-content", title: "Invalid Content", detail: detail}
}

// errNotSupplied and errNotValid: a missing or bad body parameter. [inferred] shape.
func errNotSupplied(param, pointer, detail string) apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-supplied", title: "Required parameter not supplied",
		detail: detail, source: source(param, pointer)}
}

func errNotValid(param, pointer, detail string) apiError {
	return apiError{status: http.StatusBadRequest, code: "parameter-not-valid", title: "Required parameter not valid",
		detail: detail, source: source(param, pointer)}
}

// errInvalidBearer: [fixture] getInstitutionsUnauthorized.json (no detail, no source).
func errInvalidBearer() apiError {
	return apiError{status: http.StatusUnauthorized, code: "invalid-authorization-token", title: "Invalid authorization token."}
}

// errTokenExpired: [fixture] getUserForbidden.json (source is an explicit null).
func errTokenExpired() apiError {
	return apiError{status: http.StatusForbidden, code: "access-denied", title: "Access denied.",
		detail: "Token has expired", source: "null"}
}

// errForbidden: a token whose scope or user does not cover the resource. [inferred]
func errForbidden() apiError {
	return apiError{status: http.StatusForbidden, code: "forbidden-access", title: "Forbidden Access",
		detail: "Access to this resource is forbidden."}
}

// errUnauthorizedAccess: a CLIENT_ACCESS token bound to one user used on another user's
// resource. [doc] status 401 and code (Basiq-docs errors-1/http-errors-per-endpoint.md);
// title and detail from the 401 unauthorized-access entry of Basiq's core OpenAPI.
func errUnauthorizedAccess() apiError {
	return apiError{status: http.StatusUnauthorized, code: "unauthorized-access", title: "Unauthorized Access",
		detail: "You are not authorized to access this resource"}
}

// errNotFound: [inferred] detail; code from the global catalogue.
func errNotFound(detail string) apiError {
	return apiError{status: http.StatusNotFound, code: "resource-not-found", title: "Resource not found", detail: detail}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
