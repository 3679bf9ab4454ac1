package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/clienttoken"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/ratelimit"
	"github.com/basiq-bff/bff/server/internal/session"
)

// stateTTL is how long a person has to finish the Consent UI.
const stateTTL = 30 * time.Minute

// consentActions are the Consent UI's documented actions (README, "Basiq versions"), with
// what each may carry: institutionId preselects a bank when adding one; connectionId names
// the one connection to reauthorise.
var consentActions = map[string]struct{ institution, connection bool }{
	"connect":     {institution: true},
	"manage":      {},
	"extend":      {},
	"update":      {},
	"reauthorise": {connection: true},
}

// maxJobIDs bounds the job ids passed on from the Consent UI return: a person connects a few
// banks in one visit, never dozens.
const maxJobIDs = 10

// basiqID matches the ids Basiq issues (UUIDs and short alphanumeric ids such as AU00000):
// nothing that needs escaping, nothing long.
var basiqID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// handleConsent returns the Consent UI URL for a 3.0 tenant: a bound CLIENT_ACCESS token with
// at least 50 minutes of life and a signed, single-use state that /connect/return spends. The
// optional body chooses the flow; without an action the person's consents decide (the first-
// time flow without an active consent, else "connect"). It shares GET /client-token's
// per-session limit, and a session has at most maxStates states outstanding.
func handleConsent(tokens *clienttoken.Service, store *session.Store, states kv.Store, key []byte, limiter *ratelimit.Limiter) echo.HandlerFunc {
	type request struct {
		Action        string `json:"action"`
		InstitutionID string `json:"institutionId"`
		ConnectionID  string `json:"connectionId"`
	}
	type response struct {
		URL    string `json:"url"`
		Action string `json:"action,omitempty"`
	}
	return func(c echo.Context) error {
		a, err := limitedAuthOf(c, limiter)
		if err != nil {
			return err
		}
		if !a.tenant.BindsUser() {
			return apperr.New(apperr.Forbidden, "The Consent UI needs Basiq API 3.0; this tenant connects banks from the page.")
		}
		var req request
		if c.Request().ContentLength != 0 {
			if err := decodeJSON(c, &req); err != nil {
				return err
			}
		}
		if problem := consentProblem(req.Action, req.InstitutionID, req.ConnectionID); problem != "" {
			return apperr.New(apperr.Invalid, problem)
		}
		p, err := principal(c, tokens, store, a)
		if err != nil {
			return err
		}
		launch, err := tokens.ConsentLaunch(c.Request().Context(), a.tenant, p, req.Action == "")
		if err != nil {
			return err
		}
		if err := rememberBasiqUser(c, store, a.sess, launch.Token.BasiqUserID); err != nil {
			return err
		}
		action := req.Action
		if action == "" && launch.ActiveConsent {
			action = "connect"
		}
		state, id, err := newState(key)
		if err != nil {
			return err
		}
		// The state remembers whose visit it was, so the return can forget their cached consents.
		if err := storeState(c.Request().Context(), states, a.sess.Hash, id, []byte(a.tenant.ID+"\x00"+launch.Token.BasiqUserID)); err != nil {
			return apperr.Wrap(apperr.StoreUnavailable, err, "")
		}
		q := url.Values{"token": {launch.Token.AccessToken}, "state": {state}}
		// Basiq reauthorises one connection from connectionId alone (consent-actions.md,
		// "ConnectionId Parameter for Reauthorisation"); action=reauthorise without it renews
		// every connection that expires soon.
		if action != "" && req.ConnectionID == "" {
			q.Set("action", action)
		}
		if req.InstitutionID != "" {
			q.Set("institutionId", req.InstitutionID)
		}
		if req.ConnectionID != "" {
			q.Set("connectionId", req.ConnectionID)
		}
		return c.JSON(http.StatusOK, response{URL: a.tenant.ConsentURL + "?" + q.Encode(), Action: action})
	}
}

// consentProblem checks a consent request's shape; "" when it is fine.
func consentProblem(action, institutionID, connectionID string) string {
	allowed, known := consentActions[action]
	switch {
	case action != "" && !known:
		return "Unknown action: use connect, manage, extend, update or reauthorise."
	case institutionID != "" && !basiqID.MatchString(institutionID):
		return "The institutionId is not valid."
	case connectionID != "" && !basiqID.MatchString(connectionID):
		return "The connectionId is not valid."
	case institutionID != "" && action != "" && !allowed.institution:
		return "An institutionId goes only with the connect action."
	case connectionID != "" && !allowed.connection:
		return "A connectionId goes only with the reauthorise action."
	}
	return ""
}

// handleConsentReturn is where the Consent UI sends the person back. It arrives as a
// cross-site navigation, so the SameSite=Strict cookie is absent: the state alone proves the
// flow started here, and spending it makes a replay fail. It always answers with a redirect
// into the SPA, never JSON: /?jobIds=.. (possibly empty: the person closed the Consent UI) or
// /?connect_error=<code>.
func handleConsentReturn(tokens *clienttoken.Service, states kv.Store, key []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		q := c.QueryParams()
		fail := func(code string) error {
			return c.Redirect(http.StatusSeeOther, "/?"+url.Values{"connect_error": {code}}.Encode())
		}
		if len(q["state"]) != 1 {
			return fail(apperr.InvalidState.Code)
		}
		id, ok := verifyState(key, q.Get("state"))
		if !ok {
			return fail(apperr.InvalidState.Code)
		}
		ctx := c.Request().Context()
		who, err := states.GetDel(ctx, "state:"+id)
		if errors.Is(err, kv.ErrNotFound) {
			return fail(apperr.InvalidState.Code)
		}
		if err != nil {
			// The kv hook has counted the failure; the person is told to try again.
			return fail(apperr.StoreUnavailable.Code)
		}
		if tenantID, basiqUserID, ok := strings.Cut(string(who), "\x00"); ok && basiqUserID != "" {
			if err := tokens.ForgetConsents(ctx, tenantID, basiqUserID); err != nil {
				return fail(apperr.StoreUnavailable.Code)
			}
		}
		jobs, ok := jobIDs(q["jobIds"], q["jobId"])
		if !ok {
			return fail("invalid_jobs")
		}
		return c.Redirect(http.StatusSeeOther, "/?"+url.Values{"jobIds": {strings.Join(jobs, ",")}}.Encode())
	}
}

// jobIDs merges Basiq's jobIds (comma-separated, possibly repeated) and jobId parameters into
// distinct ids, in order. It refuses anything that is not an id, and more than maxJobIDs.
func jobIDs(lists ...[]string) ([]string, bool) {
	var out []string
	seen := map[string]bool{}
	for _, list := range lists {
		for _, v := range list {
			for _, id := range strings.Split(v, ",") {
				id = strings.TrimSpace(id)
				switch {
				case id == "" || seen[id]:
					continue
				case !basiqID.MatchString(id) || len(out) == maxJobIDs:
					return nil, false
				}
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, true
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
