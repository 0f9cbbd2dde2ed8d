package bridge

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/auth"
)

// access is what a request asks to do: read one library's events, read
// the events of a subject pattern, or publish.
type access struct {
	library string // a library socket or SSE stream
	pattern string // a pattern socket
	publish bool   // POST /v1/events
}

// authorized checks a request that passed its 400 checks, before anything
// is subscribed, read, published or upgraded (DESIGN §8). With
// Config.Tokens set it reads the token (Authorization: Bearer … or
// ?token=) and answers 401 {"error":"missing token"|"invalid token"|"token
// expired"} with WWW-Authenticate: Bearer when it is missing, invalid or
// expired, and 403 when it is valid but does not allow a; then, with
// Config.AllowedOrigins set, it answers 403 to a browser request (one with
// an Origin header) from another origin. It returns the token's claims
// (nil while auth is off) and false when it answered.
func (b *Bridge) authorized(w http.ResponseWriter, r *http.Request, a access) (*auth.Claims, bool) {
	var claims *auth.Claims
	if v := b.cfg.Tokens; v != nil {
		c, err := v.VerifyRequest(r)
		if err != nil {
			reason := "invalid token"
			switch {
			case errors.Is(err, auth.ErrMissing):
				reason = "missing token"
			case errors.Is(err, auth.ErrExpired):
				reason = "token expired"
			}
			b.refuse(w, r, http.StatusUnauthorized, reason, err)
			return nil, false
		}
		var ok bool
		switch {
		case a.publish:
			ok = c.CanPublish()
		case a.pattern != "":
			ok = c.CanReadPattern(b.cfg.Prefix, a.pattern)
		default:
			ok = c.CanRead(a.library)
		}
		if !ok {
			b.refuse(w, r, http.StatusForbidden, forbidden(a), nil)
			return nil, false
		}
		claims = c
	}
	if !b.originAllowed(r) {
		b.refuse(w, r, http.StatusForbidden, "origin "+truncate(r.Header.Get("Origin"))+" not allowed", nil)
		return nil, false
	}
	return claims, true
}

func forbidden(a access) string {
	switch {
	case a.publish:
		return "token does not allow publishing"
	case a.pattern != "":
		return "token does not allow reading " + truncate(a.pattern)
	}
	return "token does not allow reading library " + truncate(a.library)
}

// refuse answers a refused request with code and {"error": reason}, counts
// it and logs it (the URL without its token) at debug level.
func (b *Bridge) refuse(w http.ResponseWriter, r *http.Request, code int, reason string, err error) {
	switch code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="arrwcdc"`)
		b.refused.unauthorized.Add(1)
	case http.StatusForbidden:
		b.refused.forbidden.Add(1)
	case http.StatusServiceUnavailable:
		b.refused.bridgeLimit.Add(1)
	case http.StatusTooManyRequests:
		b.refused.addressLimit.Add(1)
	}
	if ce := b.log.Check(zap.DebugLevel, "request refused"); ce != nil {
		ce.Write(zap.Int("status", code), zap.String("reason", reason), zap.String("url", redactedURL(r.URL)),
			zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
	}
	writeError(w, code, reason)
}

// originAllowed reports whether r may come from its page origin: always
// when Config.AllowedOrigins is empty or r has no Origin header (not a
// browser), else when the Origin's host is r's own or matches a pattern
// (path.Match, case-insensitive), as websocket.Accept checks it.
func (b *Bridge) originAllowed(r *http.Request) bool {
	if len(b.cfg.AllowedOrigins) == 0 {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(r.Host, u.Host) {
		return true
	}
	for _, p := range b.cfg.AllowedOrigins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return true
		}
	}
	return false
}

// redactedURL is u for logs: the value of its token parameter replaced.
func redactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	q := u.Query()
	if _, ok := q["token"]; !ok {
		return u.String()
	}
	for i := range q["token"] {
		q["token"][i] = "REDACTED"
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

// remoteHost is the host of a request's remote address, the key of the
// per-address connection limit.
func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
