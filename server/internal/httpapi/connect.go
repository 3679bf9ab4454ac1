package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/session"
)

// stateTTL is how long a person has to finish the Consent UI.
const stateTTL = 30 * time.Minute

// handleConsent returns the Consent UI URL for a 3.0 tenant: a bound CLIENT_ACCESS token and
// a signed, single-use state that /connect/return spends.
// It shares GET /client-token's per-session limit, and a session has at most maxStates states
// outstanding.
func handleConsent(tokens *clienttoken.Service, store *session.Store, states kv.Store, key []byte, limiter *clienttoken.Limiter) echo.HandlerFunc {
	type response struct {
		URL string `json:"url"`
	}
	return func(c echo.Context) error {
		sess, d, t := sessionOf(c)
		sessHash := c.Get(ctxSessionHash).(string)
		if ok, wait := limiter.Allow(sessHash); !ok {
			return apperr.Retry(apperr.RateLimited, nil, "", wait)
		}
		if !t.BindsUser() {
			return apperr.New(apperr.Forbidden, "The Consent UI needs Basiq API 3.0; this tenant connects banks from the page.")
		}
		tok, err := clientToken(c, tokens, store, sess, d, t)
		if err != nil {
			return err
		}
		state, id, err := newState(key)
		if err != nil {
			return err
		}
		if err := storeState(c.Request().Context(), states, sessHash, id, []byte(t.ID)); err != nil {
			return apperr.Retry(apperr.StoreUnavailable, err, "", time.Second)
		}
		q := url.Values{"token": {tok.AccessToken}, "state": {state}}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, response{URL: t.ConsentURL + "?" + q.Encode()})
	}
}

// handleConsentReturn is where the Consent UI sends the person back. It arrives as a
// cross-site navigation, so the SameSite=Strict cookie is absent: the state alone proves the
// flow started here, and spending it makes a replay fail.
func handleConsentReturn(states kv.Store, key []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, ok := verifyState(key, c.QueryParam("state"))
		if !ok {
			return apperr.New(apperr.InvalidState, "")
		}
		_, err := states.GetDel(c.Request().Context(), "state:"+id)
		if errors.Is(err, kv.ErrNotFound) {
			return apperr.New(apperr.InvalidState, "")
		}
		if err != nil {
			return apperr.Retry(apperr.StoreUnavailable, err, "", time.Second)
		}
		return c.Redirect(http.StatusSeeOther, "/?connected=1")
	}
}

func newState(key []byte) (state, id string, err error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	id = base64.RawURLEncoding.EncodeToString(b)
	return id + "." + stateSig(key, id), id, nil
}

func stateSig(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("consent-state\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func verifyState(key []byte, state string) (string, bool) {
	id, sig, ok := strings.Cut(state, ".")
	if !ok || len(id) != 32 || len(sig) != 24 {
		return "", false
	}
	return id, hmac.Equal([]byte(sig), []byte(stateSig(key, id)))
}
