package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/session"
)

func handleClientToken(tokens *clienttoken.Service, store *session.Store, limiter *ratelimit.Limiter) echo.HandlerFunc {
	type response struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	return func(c echo.Context) error {
		a, err := limitedAuthOf(c, limiter)
		if err != nil {
			return err
		}
		tok, err := clientToken(c, tokens, store, a)
		if err != nil {
			return err
		}
		infoFrom(c.Request().Context()).served(tok.KeyID, string(tok.Source), tok.Correlation)
		if !tok.JSONSafe {
			return c.JSON(http.StatusOK, response{AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresIn: tok.ExpiresIn})
		}
		// The hot path's answer, written without reflection: a JWT needs no escaping (decided
		// once, when the token was cached).
		b := make([]byte, 0, len(tok.AccessToken)+64)
		b = append(b, `{"access_token":"`...)
		b = append(b, tok.AccessToken...)
		b = append(b, `","token_type":"Bearer","expires_in":`...)
		b = strconv.AppendInt(b, tok.ExpiresIn, 10)
		b = append(b, "}\n"...)
		// Set here, Blob leaves it as it is: one header slice fewer per request.
		c.Response().Header()[echo.HeaderContentType] = hdrJSON
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	}
}

// clientToken returns the person's token, binding them to a Basiq user first when needed.
func clientToken(c echo.Context, tokens *clienttoken.Service, store *session.Store, a *authed) (clienttoken.Token, error) {
	p, err := principal(c, tokens, store, a)
	if err != nil {
		return clienttoken.Token{}, err
	}
	tok, err := tokens.ClientToken(c.Request().Context(), a.tenant, p)
	if err != nil {
		return clienttoken.Token{}, err
	}
	return tok, rememberBasiqUser(c, store, a.sess, tok.BasiqUserID)
}

// principal makes sure the person has a Basiq user first (API 3.0 binds the token to it; on
// 2.x the browser needs it to create connections), and remembers the id in the session so the
// next request skips the database.
func principal(c echo.Context, tokens *clienttoken.Service, store *session.Store, a *authed) (clienttoken.Principal, error) {
	ctx, d := c.Request().Context(), &a.sess.Data
	if d.BasiqUserID == "" {
		id, err := tokens.BasiqUser(ctx, a.tenant, d.UserID, d.Email)
		if err != nil {
			return clienttoken.Principal{}, err
		}
		if err := store.SetBasiqUserID(ctx, a.sess, id); err != nil {
			return clienttoken.Principal{}, err
		}
	}
	return clienttoken.Principal{UserID: d.UserID, BasiqUserID: d.BasiqUserID, Email: d.Email}, nil
}

// rememberBasiqUser stores in the session a Basiq user id that replaced a stale one.
func rememberBasiqUser(c echo.Context, store *session.Store, sess *session.Session, id string) error {
	if id == "" || id == sess.Data.BasiqUserID {
		return nil
	}
	return store.SetBasiqUserID(c.Request().Context(), sess, id)
}

// jsonSafe reports whether s can sit between JSON quotes as it is: printable ASCII without
// quotes or backslashes.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return false
		}
	}
	return true
}
