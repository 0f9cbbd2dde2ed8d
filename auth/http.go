package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// FromRequest returns the token of an HTTP request (DESIGN §8): the
// credentials of an "Authorization: Bearer <token>" header, or else the
// token query parameter, which browsers use because they cannot set
// headers on a WebSocket. The header wins when both are given. An
// Authorization header of another scheme, or token given more than once in
// the query, wraps [ErrInvalid]; no token at all is [ErrMissing].
func FromRequest(r *http.Request) (string, error) {
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return "", fmt.Errorf("%w: more than one Authorization header", ErrInvalid)
		}
		scheme, tok, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("%w: Authorization scheme %.20q, want Bearer", ErrInvalid, scheme)
		}
		if tok = strings.TrimSpace(tok); tok == "" {
			return "", ErrMissing
		}
		return tok, nil
	}
	q := r.URL.Query()["token"]
	switch {
	case len(q) > 1:
		return "", fmt.Errorf("%w: token given %d times", ErrInvalid, len(q))
	case len(q) == 0 || strings.TrimSpace(q[0]) == "":
		return "", ErrMissing
	}
	return strings.TrimSpace(q[0]), nil
}

// VerifyRequest is [FromRequest] then [Verifier.Verify]: the claims of the
// request's token, or an error wrapping [ErrMissing], [ErrInvalid] or
// [ErrExpired] (all three mean 401).
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	tok, err := FromRequest(r)
	if err != nil {
		return nil, err
	}
	return v.Verify(tok)
}
