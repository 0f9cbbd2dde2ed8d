// Package auth verifies and mints the access tokens of arrwcdc (DESIGN §8):
// JWTs signed with HS256 (a shared secret) or RS256 (an RSA key pair) whose
// claims say who the holder is (sub), until when the token is good (exp,
// required) and what it may do:
//
//	{"sub": "alice", "exp": 1767225600,
//	 "arrwcdc": {"read": ["550e8400-e29b-41d4-a716-446655440000", "lib-1"], "publish": false}}
//
// A read entry is an exact library id ([A-Za-z0-9_-]{1,128}) or "*" for
// every library. There is no prefix, substring or pattern matching: "lib-1"
// grants lib-1 and not lib-10. A token with any invalid entry (an id with
// a dot, "*" inside an id, ">"…) is refused as a whole, so a bad grant can
// never widen into a subject wildcard.
//
// One [Verifier] serves both doors: the bridge checks the token of each
// HTTP request and WebSocket, and the broker's NATS auth callout checks the
// token a NATS client presents as its auth token. A fix here lands on both.
//
// A Verifier accepts exactly one algorithm, the one its key is for; "none"
// and every other algorithm are refused ([ErrInvalid]), as are tokens
// without exp and tokens signed with another key. Expired tokens give
// [ErrExpired]; only a token whose signature checks out can be reported as
// expired. [Verifier.Verify] never panics on any input (see FuzzVerify).
//
// A [Signer] mints tokens for development and tests (`arrwcdc token`).
//
// Verifier and Signer are safe for concurrent use; [Claims] are values.
package auth
