// Package session keeps end-user login sessions server-side in the kv store: the cookie holds
// only the signed session id (256 random bits); the record (user, tenant, times) lives in kv,
// sealed with a key derived from the session keys and bound to its id. Callers see a typed
// Session (id and Data); gorilla/sessions and securecookie are the cookie mechanism inside, and
// this is the only package that imports them. It adds idle and absolute timeouts and "end
// every session of this user".
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/basiq-bff/bff/server/internal/apperr"
	"github.com/basiq-bff/bff/server/internal/kv"
	"github.com/basiq-bff/bff/server/internal/ttlcache"
)

// Options configure the store.
type Options struct {
	// Keys sign the cookie: the first signs, all verify, so keys rotate by prepending.
	// They also seal the records in kv: the first seals, all open.
	Keys            [][]byte
	Secure          bool
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// CacheTTL is how long a replica may trust its in-process copy of a session record. An
	// ended session is dropped from every replica's copy at once through kv pub/sub; the TTL
	// bounds the damage of a lost message. 0 disables the copy.
	CacheTTL time.Duration
	Now      func() time.Time // nil: time.Now
}

// endedChannel carries the ids of ended sessions to every replica.
const endedChannel = "sessions:ended"

// touchEvery bounds how often the sliding idle timeout is written back: at most one kv write
// per session per minute keeps the token hot path at one read.
const touchEvery = time.Minute

// Data is what a session knows about its person.
type Data struct {
	UserID      int64
	Tenant      string
	Email       string
	BasiqUserID string
	Created     time.Time
	Seen        time.Time
	// OIDC is set for a person who signed in through the tenant's identity provider.
	OIDC *OIDCLogin
}

// record is Data as stored in kv.
type record struct {
	UserID      int64      `json:"uid"`
	Tenant      string     `json:"tid"`
	Email       string     `json:"em"`
	BasiqUserID string     `json:"bu,omitempty"`
	Created     int64      `json:"ct"`
	Seen        int64      `json:"st"`
	OIDC        *OIDCLogin `json:"oidc,omitempty"`
}

// Session is one person's login session: its id (secret: log only HashID of it) and what it
// knows of the person.
type Session struct {
	ID   string
	Data Data
	// Hash is HashID(ID), the form of the id that may appear in logs, computed once per
	// verified cookie. Set on sessions from Current.
	Hash string
}

// Store keeps sessions in kv and their ids in signed cookies.
type Store struct {
	kv     kv.Store
	codecs []securecookie.Codec
	sealer *sealer
	opts   Options
	name   string
	now    func() time.Time
	cache  *ttlcache.Cache[Data]
	// cookies maps cookie values already verified to their session id and its hash.
	cookies *ttlcache.Cache[verified]
}

// NewStore returns a session store. It fails when no signing key is given.
func NewStore(store kv.Store, o Options) (*Store, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("session: at least one signing key is required")
	}
	s := &Store{kv: store, opts: o, now: o.Now, name: CookieName(o.Secure), cache: ttlcache.New[Data](o.CacheTTL, 100_000),
		cookies: ttlcache.New[verified](o.CacheTTL, 100_000)}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.sealer, err = newSealer(o.Keys); err != nil {
		return nil, err
	}
	for _, k := range o.Keys {
		c := securecookie.New(k, nil)
		// The id is opaque bytes: no gob, no JSON, just the signature and timestamp.
		c.SetSerializer(securecookie.NopEncoder{})
		c.MaxAge(int(o.AbsoluteTimeout / time.Second))
		c.MaxLength(512)
		s.codecs = append(s.codecs, c)
	}
	return s, nil
}

// CookieName is __Host-bff for secure cookies (the prefix makes browsers insist on Secure,
// Path=/ and no Domain) and bff for plain-http development.
func CookieName(secure bool) string {
	if secure {
		return "__Host-bff"
	}
	return "bff"
}

// fromCookie loads the session named by the request's cookie. A missing, forged, expired or
// unknown cookie yields nil and no error; a failing kv store yields an error that wraps
// kv.ErrUnavailable, so the caller can answer 503 instead of logging people out.
func (s *Store) fromCookie(r *http.Request) (*Session, error) {
	value, ok := cookieValue(r, s.name)
	if !ok {
		return nil, nil
	}
	now := s.now()
	v, ok := s.cookies.Get(value, now)
	if !ok {
		var raw []byte
		if err := securecookie.DecodeMulti(s.name, value, &raw, s.codecs...); err != nil {
			return nil, nil
		}
		v = verified{id: string(raw), hash: HashID(string(raw))}
		s.cookies.Put(value, v, now)
	}
	d, ok, err := s.load(r.Context(), v.id, now)
	if err != nil || !ok {
		return nil, err
	}
	return &Session{ID: v.id, Data: d, Hash: v.hash}, nil
}

// verified is what a verified cookie names: the session id and its HashID.
type verified struct{ id, hash string }

// setCookie sets the signed cookie naming session id; maxAge < 0 expires it.
func (s *Store) setCookie(w http.ResponseWriter, id string, maxAge int) error {
	opts := s.cookieOptions()
	value := ""
	if maxAge < 0 {
		opts.MaxAge = maxAge
	} else {
		enc, err := securecookie.EncodeMulti(s.name, []byte(id), s.codecs...)
		if err != nil {
			return fmt.Errorf("session: encode cookie: %w", err)
		}
		value = enc
	}
	http.SetCookie(w, sessions.NewCookie(s.name, value, opts))
	return nil
}

func (s *Store) cookieOptions() *sessions.Options {
	return &sessions.Options{
		Path:     "/",
		MaxAge:   int(s.opts.AbsoluteTimeout / time.Second),
		Secure:   s.opts.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

func sessKey(id string) string { return "sess:" + id }
func userKey(tenant string, userID int64) string {
	return "usess:" + tenant + ":" + strconv.FormatInt(userID, 10)
}

// load returns the record of id; ok is false when it does not exist or has timed out (then
// it is deleted).
func (s *Store) load(ctx context.Context, id string, now time.Time) (Data, bool, error) {
	// A cached copy that still looks live is trusted; one that looks timed out is checked
	// against kv first, since another replica may have slid its idle timeout.
	if d, ok := s.cache.Get(id, now); ok && !s.timedOut(d, now) {
		return d, true, nil
	}
	b, err := s.kv.Get(ctx, sessKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return Data{}, false, nil
	}
	if err != nil {
		return Data{}, false, fmt.Errorf("session: load: %w", err)
	}
	// A record that does not open under this id (edited, copied from another session's key,
	// or sealed with a key no longer configured) is no session at all.
	plain, ok := s.sealer.open(id, b)
	if !ok {
		return Data{}, false, nil
	}
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return Data{}, false, nil
	}
	d := Data{UserID: rec.UserID, Tenant: rec.Tenant, Email: rec.Email, BasiqUserID: rec.BasiqUserID,
		Created: time.Unix(rec.Created, 0), Seen: time.Unix(rec.Seen, 0), OIDC: rec.OIDC}
	if s.timedOut(d, now) {
		if err := s.delete(ctx, id, d); err != nil {
			return Data{}, false, err
		}
		return Data{}, false, nil
	}
	s.cache.Put(id, d, now)
	return d, true, nil
}

func (s *Store) timedOut(d Data, now time.Time) bool {
	return now.Sub(d.Seen) >= s.opts.IdleTimeout || now.Sub(d.Created) >= s.opts.AbsoluteTimeout
}

// errGone says a write-back found its session already ended.
var errGone = errors.New("session: ended while the request ran")

// write stores the record with a TTL that ends it at whichever timeout comes first, so kv
// forgets abandoned sessions by itself. Only create may make a new record: every other write
// replaces an existing one (SET XX), so a request still in flight when its session is ended
// (logout, users disable) cannot write it back to life; it gets errGone instead.
func (s *Store) write(ctx context.Context, id string, d Data, create bool) error {
	ttl := min(d.Seen.Add(s.opts.IdleTimeout).Sub(s.now()), d.Created.Add(s.opts.AbsoluteTimeout).Sub(s.now()))
	if ttl <= 0 {
		return errors.New("session: write of a session that has already timed out")
	}
	b, err := json.Marshal(record{UserID: d.UserID, Tenant: d.Tenant, Email: d.Email, BasiqUserID: d.BasiqUserID,
		Created: d.Created.Unix(), Seen: d.Seen.Unix(), OIDC: d.OIDC})
	if err != nil {
		return fmt.Errorf("session: encode: %w", err)
	}
	sealed, err := s.sealer.seal(id, b)
	if err != nil {
		return err
	}
	if create {
		if err := s.kv.Set(ctx, sessKey(id), sealed, ttl); err != nil {
			return fmt.Errorf("session: save: %w", err)
		}
	} else if ok, err := s.kv.SetXX(ctx, sessKey(id), sealed, ttl); err != nil {
		return fmt.Errorf("session: save: %w", err)
	} else if !ok {
		s.cache.Forget(id, s.now())
		return errGone
	}
	s.cache.Put(id, d, s.now())
	// The per-user index lives as long as the longest session could.
	if err := s.kv.SAdd(ctx, userKey(d.Tenant, d.UserID), s.opts.AbsoluteTimeout, id); err != nil {
		return fmt.Errorf("session: index: %w", err)
	}
	if err := s.indexSID(ctx, id, d); err != nil {
		return fmt.Errorf("session: index: %w", err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, id string, d Data) error {
	s.cache.Forget(id, s.now())
	if err := s.kv.Delete(ctx, sessKey(id)); err != nil {
		return fmt.Errorf("session: delete: %w", err)
	}
	s.announceEnded(ctx, id)
	if d.UserID != 0 {
		if err := s.kv.SRem(ctx, userKey(d.Tenant, d.UserID), id); err != nil {
			return fmt.Errorf("session: unindex: %w", err)
		}
	}
	return nil
}

func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: new id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashID is the form of a session id that may appear in logs.
func HashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

// Current returns the request's session and its data. It returns apperr.Unauthenticated when
// there is none (or it timed out) and apperr.StoreUnavailable when kv fails.
func (s *Store) Current(r *http.Request) (*Session, error) {
	sess, err := s.fromCookie(r)
	if err != nil {
		return nil, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if sess == nil {
		return nil, apperr.New(apperr.Unauthenticated, "")
	}
	return sess, nil
}

// Begin starts a new session for d's user and sets its cookie. Any session the request came
// with is ended first, so an id planted before login is never promoted.
func (s *Store) Begin(w http.ResponseWriter, r *http.Request, d Data) error {
	return s.BeginChecked(w, r, d, nil)
}

// BeginChecked is Begin, then still (when not nil) confirms that the user may still log in
// now that the session is indexed under the user. A user disabled or given a new password
// while the login ran is then either seen by still, or has the new session ended by
// EndUser: the session is written and indexed before still reads. If still fails, the new
// session is deleted, its cookie is not set and still's error is returned.
func (s *Store) BeginChecked(w http.ResponseWriter, r *http.Request, d Data, still func(context.Context) error) error {
	if old, err := s.fromCookie(r); err != nil {
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	} else if old != nil {
		if err := s.delete(r.Context(), old.ID, old.Data); err != nil {
			return apperr.Wrap(apperr.StoreUnavailable, err, "")
		}
	}
	now := s.now()
	d.Created, d.Seen = now, now
	id, err := newID()
	if err != nil {
		return err
	}
	if err := s.write(r.Context(), id, d, true); err != nil {
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if still != nil {
		if err := still(r.Context()); err != nil {
			if derr := s.delete(r.Context(), id, d); derr != nil {
				return apperr.Wrap(apperr.StoreUnavailable, derr, "")
			}
			return err
		}
	}
	s.pruneUser(r.Context(), d.Tenant, d.UserID, id)
	return s.setCookie(w, id, 0)
}

// pruneMax bounds the ids one login checks, so a user with very many sessions does not make
// a login slow.
const pruneMax = 32

// pruneUser removes from the user's index the ids of sessions that have ended by timing out
// (kv expired them, but the set kept their ids). Best effort: it runs at login, where the
// index is written anyway, and a failure only leaves the ids for the next login.
func (s *Store) pruneUser(ctx context.Context, tenant string, userID int64, keep string) {
	ids, err := s.kv.SMembers(ctx, userKey(tenant, userID))
	if err != nil {
		return
	}
	var gone []string
	for i, id := range ids {
		if i >= pruneMax {
			break
		}
		if id == keep {
			continue
		}
		if _, err := s.kv.Get(ctx, sessKey(id)); errors.Is(err, kv.ErrNotFound) {
			gone = append(gone, id)
		} else if err != nil {
			return
		}
	}
	if len(gone) > 0 {
		_ = s.kv.SRem(ctx, userKey(tenant, userID), gone...)
	}
}

// End deletes the session and expires its cookie.
func (s *Store) End(w http.ResponseWriter, r *http.Request, sess *Session) error {
	if err := s.delete(r.Context(), sess.ID, sess.Data); err != nil {
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	return s.setCookie(w, "", -1)
}

// Touch slides the idle timeout, writing at most once per minute.
func (s *Store) Touch(ctx context.Context, sess *Session) error {
	now := s.now()
	if now.Sub(sess.Data.Seen) < touchEvery {
		return nil
	}
	sess.Data.Seen = now
	return s.writeBack(ctx, sess.ID, sess.Data)
}

// writeBack replaces an existing record: apperr.Unauthenticated when the session ended
// meanwhile, apperr.StoreUnavailable when kv fails.
func (s *Store) writeBack(ctx context.Context, id string, d Data) error {
	err := s.write(ctx, id, d, false)
	switch {
	case errors.Is(err, errGone):
		return apperr.Wrap(apperr.Unauthenticated, err, "")
	case err != nil:
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	return nil
}

// SetBasiqUserID records the person's Basiq user id in the session, so later requests need
// no database read.
func (s *Store) SetBasiqUserID(ctx context.Context, sess *Session, id string) error {
	sess.Data.BasiqUserID = id
	return s.writeBack(ctx, sess.ID, sess.Data)
}

// EndUser deletes every session of the user, on every replica: used when the user is disabled,
// changes password or their tenant is removed.
func (s *Store) EndUser(ctx context.Context, tenant string, userID int64) (int, error) {
	ids, err := s.kv.SMembers(ctx, userKey(tenant, userID))
	if err != nil {
		return 0, apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if err := s.endAll(ctx, userKey(tenant, userID), ids); err != nil {
		return 0, err
	}
	for _, id := range ids {
		s.cache.Forget(id, s.now())
		s.announceEnded(ctx, id)
	}
	return len(ids), nil
}

// endAll deletes the sessions ids, read from the index set at index, and then takes exactly
// those ids out of the set. Never the whole set: a login that indexed its new session after
// the set was read must stay in it, or a later disable or password change would miss it.
func (s *Store) endAll(ctx context.Context, index string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, sessKey(id))
	}
	if err := s.kv.Delete(ctx, keys...); err != nil {
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	if err := s.kv.SRem(ctx, index, ids...); err != nil {
		return apperr.Wrap(apperr.StoreUnavailable, err, "")
	}
	return nil
}

// announceEnded tells every replica to drop its copy of the session. Best effort: the record
// is already gone from kv, and a replica that misses the message trusts its copy for at most
// CacheTTL.
func (s *Store) announceEnded(ctx context.Context, id string) {
	if s.opts.CacheTTL > 0 {
		_ = s.kv.Publish(ctx, endedChannel, []byte(id))
	}
}

// Watch drops this replica's copies of sessions ended on any replica. It runs until ctx is
// done, resubscribing after a lost connection; after any gap it forgets every copy, since
// messages may have been missed.
func (s *Store) Watch(ctx context.Context) {
	if s.opts.CacheTTL <= 0 {
		return
	}
	kv.Watch(ctx, s.kv, endedChannel, func(id []byte) { s.cache.Forget(string(id), s.now()) }, s.cache.Clear)
}
