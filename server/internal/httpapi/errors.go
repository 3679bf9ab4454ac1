package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/clip"
)

// errorBody is the one error shape of the API.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorHandler renders every error a handler or middleware returns. Only 5xx are logged with
// their cause; the body carries the public code and message, never the cause.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		kind, msg, retry := apperr.Public(err)
		status, code := statusOf(kind), kind.Code
		var he *echo.HTTPError
		if errors.As(err, &he) {
			status, code, msg = he.Code, httpCode(he.Code), http.StatusText(he.Code)+"."
		}
		if status >= 500 {
			log.ErrorContext(c.Request().Context(), "request failed", "status", status, "code", code, "err", err)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		if status == http.StatusServiceUnavailable && retry <= 0 {
			retry = time.Second // every 503 says when to come back
		}
		if retry > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int((retry+999_999_999)/1_000_000_000)))
		}
		var body errorBody
		body.Error.Code, body.Error.Message = code, msg
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

// statusOf is the one table from error kind to HTTP status. Every 503 also gets a
// Retry-After (one second unless the error names its own delay); see errorHandler.
func statusOf(k *apperr.Kind) int {
	switch k {
	case apperr.Invalid, apperr.InvalidState:
		return http.StatusBadRequest
	case apperr.InvalidCredentials, apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.CSRF, apperr.Forbidden, apperr.PasswordLoginOff:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.TooManyAttempts, apperr.RateLimited:
		return http.StatusTooManyRequests
	case apperr.UpstreamRejected:
		return http.StatusBadGateway
	case apperr.UpstreamUnavailable, apperr.StoreUnavailable, apperr.Busy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// httpCode names echo's own errors (unknown route, wrong method) in our code style.
func httpCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthenticated"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusRequestEntityTooLarge:
		return "invalid_request"
	}
	if status >= 500 {
		return "internal_error"
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

// maxBody bounds JSON request bodies: the largest one we accept (a login) is a few hundred
// bytes.
const maxBody = 16 << 10

// decodeJSON reads a JSON object into v strictly: the content type must be JSON, the body
// small, fields known, keys unique and nothing may follow the object. Every failure is a
// 400 invalid_request with a sentence saying what was wrong.
func decodeJSON(c echo.Context, v any) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apperr.New(apperr.Invalid, "The request body must be JSON (Content-Type: application/json).")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apperr.New(apperr.Invalid, fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
		}
		return apperr.Wrap(apperr.Invalid, err, "The request body could not be read.")
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return apperr.New(apperr.Invalid, "The request body must be a JSON object.")
	}
	if err := checkDuplicateKeys(body); err != nil {
		return apperr.Wrap(apperr.Invalid, err, "The request body is not valid JSON: "+err.Error()+".")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.Wrap(apperr.Invalid, err, "The request body is not valid JSON: "+jsonProblem(err)+".")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.Invalid, "The request body must hold exactly one JSON object.")
	}
	return nil
}

// maxEchoedName bounds a field name quoted back in an error message: the client wrote it, and
// a 16 KiB name would otherwise come back whole.
const maxEchoedName = 40

// jsonProblem describes a decoding error, echoing at most a short field name back.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + strconv.Quote(clip.To(te.Field, maxEchoedName)) + " has the wrong type"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or truncated"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			return "it has an unknown field"
		}
		return "unknown field " + strconv.Quote(clip.To(name, maxEchoedName))
	}
	return "it does not match the expected object"
}

// checkDuplicateKeys rejects objects that name a key twice: decoders disagree on which one
// wins, which is how request smuggling between layers starts. encoding/json matches field
// names case-insensitively (with Unicode folding), so keys are compared folded: "tenant" and
// "Tenant" are the same key.
func checkDuplicateKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("malformed")
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return errors.New("malformed")
				}
				key, _ := k.(string)
				folded := foldKey(key)
				if seen[folded] {
					return fmt.Errorf("duplicate key %q", clip.To(key, maxEchoedName))
				}
				seen[folded] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		if err != nil {
			return errors.New("malformed")
		}
		return nil
	}
	return walk()
}

// foldKey maps every rune to the smallest rune of its Unicode case-folding orbit, so keys that
// encoding/json would treat as one field fold to one string.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
