package basiq

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestUserReads: GET /users/{id} and GET /users/{id}/consents against the emulator, and how
// a deleted user shows up in each call.
func TestUserReads(t *testing.T) {
	e := newEmu(t)
	c := New(nil, 0)
	ctx := context.Background()
	srv := e.serverToken(t, c)
	u, err := c.CreateUser(ctx, e.url, srv, NewUser{Email: "p@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UserExists(ctx, e.url, srv, u.ID); err != nil {
		t.Fatalf("UserExists: %v", err)
	}
	list, err := c.Consents(ctx, e.url, srv, u.ID)
	if err != nil || len(list) != 0 {
		t.Fatalf("Consents before any: %v, %v", list, err)
	}
	e.em.AddConsent(u.ID)
	list, err = c.Consents(ctx, e.url, srv, u.ID)
	if err != nil || len(list) != 1 || !list[0].Active(e.clk.Now()) || list[0].Active(e.clk.Now().AddDate(2, 0, 0)) {
		t.Fatalf("Consents after one: %+v, %v", list, err)
	}

	e.em.DeleteUser("app-1", u.ID)
	tests := []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"GET user", func() error { return c.UserExists(ctx, e.url, srv, u.ID) }, NotFound},
		{"GET consents", func() error { _, err := c.Consents(ctx, e.url, srv, u.ID); return err }, NotFound},
		{"CLIENT_ACCESS mint", func() error {
			_, err := c.Token(ctx, TokenRequest{BaseURL: e.url, APIKey: e.key, Version: "3.0", Scope: ScopeClient, UserID: u.ID})
			return err
		}, UserRejected},
		{"empty user id", func() error { return c.UserExists(ctx, e.url, srv, "") }, func(err error) bool { return errors.Is(err, ErrInvalidArgument) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !tc.want(err) {
				t.Errorf("error %v", err)
			}
			if err != nil && strings.Contains(err.Error(), srv) {
				t.Error("the error holds the token")
			}
		})
	}
}

func TestUserRejectedAndNotFound(t *testing.T) {
	tests := []struct {
		name               string
		err                error
		rejected, notFound bool
	}{
		{"user id refused on /token", &Error{Endpoint: EndpointToken, Status: 400, Code: "parameter-not-valid", Detail: "User ID value is not valid"}, true, false},
		{"scope refused on /token", &Error{Endpoint: EndpointToken, Status: 400, Code: "parameter-not-valid", Detail: "Scope is not valid"}, false, false},
		{"unknown key on /token is not a missing resource", &Error{Endpoint: EndpointToken, Status: http.StatusNotFound, Code: "parameter-not-valid"}, false, false},
		{"user gone", &Error{Endpoint: EndpointUser, Status: http.StatusNotFound, Code: "resource-not-found"}, false, true},
		{"wrapped", errors.Join(errors.New("outer"), &Error{Endpoint: EndpointConsents, Status: 404}), false, true},
		{"nil", nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := UserRejected(tc.err); got != tc.rejected {
				t.Errorf("UserRejected = %v", got)
			}
			if got := NotFound(tc.err); got != tc.notFound {
				t.Errorf("NotFound = %v", got)
			}
		})
	}
}
