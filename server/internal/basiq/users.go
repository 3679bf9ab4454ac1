package basiq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Endpoints of the user reads.
const (
	EndpointUser     = "GET /users/{id}"
	EndpointConsents = "GET /users/{id}/consents"
)

// Consent is one of a Basiq user's consents, as GET /users/{id}/consents lists them.
type Consent struct {
	ID         string
	Status     string // "active", "revoked", "expired"
	ExpiryDate time.Time
}

// Active reports whether the consent is in force at now.
func (c Consent) Active(now time.Time) bool {
	return c.Status == "active" && (c.ExpiryDate.IsZero() || now.Before(c.ExpiryDate))
}

// UserExists reads GET /users/{id} with a SERVER_ACCESS token: nil when the user exists, an
// *Error with Status 404 (see NotFound) when Basiq does not know it, else as for Token.
func (c *Client) UserExists(ctx context.Context, baseURL, serverToken, userID string) error {
	_, err := c.getJSON(ctx, EndpointUser, baseURL, serverToken, "/users/"+url.PathEscape(userID), userID)
	return err
}

// Consents lists a Basiq user's consents with a SERVER_ACCESS token (Basiq's core API allows
// only a server token here). Errors are as for UserExists.
func (c *Client) Consents(ctx context.Context, baseURL, serverToken, userID string) ([]Consent, error) {
	body, err := c.getJSON(ctx, EndpointConsents, baseURL, serverToken, "/users/"+url.PathEscape(userID)+"/consents", userID)
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			ExpiryDate string `json:"expiryDate"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, badResponse(EndpointConsents, "body is not a consent list")
	}
	out := make([]Consent, 0, len(list.Data))
	for _, d := range list.Data {
		exp, _ := time.Parse(time.RFC3339, d.ExpiryDate) // absent or odd: no expiry known
		out = append(out, Consent{ID: d.ID, Status: strings.ToLower(d.Status), ExpiryDate: exp})
	}
	return out, nil
}

func (c *Client) getJSON(ctx context.Context, endpoint, baseURL, serverToken, path, userID string) ([]byte, error) {
	switch {
	case serverToken == "" || !headerSafe(serverToken):
		return nil, fmt.Errorf("basiq %s: %w: token is empty or not header-safe", endpoint, ErrInvalidArgument)
	case userID == "" || len(userID) > 128:
		return nil, fmt.Errorf("basiq %s: %w: user id is empty or too long", endpoint, ErrInvalidArgument)
	}
	target, err := endpointURL(baseURL, path)
	if err != nil {
		return nil, fmt.Errorf("basiq %s: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("basiq %s: build request: %w", endpoint, ErrInvalidArgument)
	}
	req.Header.Set("Authorization", "Bearer "+serverToken)
	req.Header.Set("Accept", "application/json")
	secrets := []string{serverToken}
	resp, body, err := c.do(req, endpoint, secrets)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newError(endpoint, resp, body, secrets)
	}
	if len(body) > maxBody {
		return nil, badResponse(endpoint, "body exceeds 64 KiB")
	}
	return body, nil
}

// NotFound reports whether Basiq answered 404 to a call other than /token (where 404 means an
// unknown API key, not a missing resource).
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Endpoint != EndpointToken && e.Status == http.StatusNotFound
}

// UserRejected reports whether /token refused a CLIENT_ACCESS mint because of its userId: a
// 400 parameter-not-valid about the user id (Basiq's code list: "User ID value is not valid"),
// which is what a deleted Basiq user gets.
func UserRejected(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Endpoint != EndpointToken || e.Status != http.StatusBadRequest || e.Code != "parameter-not-valid" {
		return false
	}
	d := strings.ToLower(e.Detail + " " + e.Title)
	return strings.Contains(d, "user id") || strings.Contains(d, "userid")
}
