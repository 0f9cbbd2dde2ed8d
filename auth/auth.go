package auth

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arrwdb/arrwcdc/subjects"
)

// Errors of [Verifier.Verify]. Every error it returns wraps exactly one of
// them. The bridge answers 401 to all three; 403 is for a valid token that
// does not allow what was asked ([Claims.CanRead] false).
var (
	// ErrMissing: no token at all (empty after trimming spaces).
	ErrMissing = errors.New("auth: missing token")
	// ErrInvalid: malformed, signed with another key or algorithm ("none"
	// included), without exp, not valid yet (nbf), too large, or with an
	// invalid read entry.
	ErrInvalid = errors.New("auth: invalid token")
	// ErrExpired: correctly signed but its exp has passed.
	ErrExpired = errors.New("auth: token expired")
)

// All is the read entry that grants every library.
const All = "*"

// Limits on what a token may hold. They bound the work one request can
// cause; real tokens are far smaller.
const (
	// MaxTokenSize is the longest token Verify parses, in bytes.
	MaxTokenSize = 16 << 10
	// MaxReadEntries is the most read entries a token may have.
	MaxReadEntries = 256
	// MinSecretSize is the shortest HS256 secret accepted (RFC 7518
	// §3.2: at least the hash size, 256 bits).
	MinSecretSize = 32
	// MinRSABits is the smallest RSA modulus accepted.
	MinRSABits = 2048
)

// Claims is what a verified token says. The zero value (or nil) grants
// nothing.
type Claims struct {
	// Subject is the token's sub: who holds it. It may be empty.
	Subject string
	// Read lists the libraries the holder may read: exact library ids, or
	// [All]. Verify guarantees every entry is valid.
	Read []string
	// Publish reports whether the holder may publish (POST /v1/events).
	Publish bool
	// Expires is the token's exp (whole seconds). Verify guarantees it is
	// set and in the future at the time of the call.
	Expires time.Time
	// IssuedAt is the token's iat, the zero time if absent.
	IssuedAt time.Time
}

// CanRead reports whether the token allows reading library id: id is a
// valid library id and the read list holds it exactly, or holds [All].
// "lib-1" does not allow "lib-10", nor the other way round.
func (c *Claims) CanRead(id string) bool {
	if c == nil || subjects.ValidateLibraryID(id) != nil {
		return false
	}
	return slices.Contains(c.Read, All) || slices.Contains(c.Read, id)
}

// ReadsAll reports whether the token reads every library (a "*" entry).
func (c *Claims) ReadsAll() bool {
	return c != nil && slices.Contains(c.Read, All)
}

// CanReadPattern reports whether the token allows a subscription to the
// NATS subject pattern (a WebSocket ?filter=) under prefix:
//
//   - the pattern must pass [subjects.ValidatePattern] (else false);
//   - a token with [All] may use any valid pattern ("events.>",
//     "events.library.*.document.added"…);
//   - any other token only a pattern whose library token is literally one
//     of its ids: "events.library.<id>.>" or narrower
//     ("events.library.<id>.document.*"). A pattern that spans libraries
//     ("events.>", "events.library.>", "events.library.*.…", "events.*.…")
//     is refused even if the token reads every library it would match
//     today: the set of libraries is open, the grant is not.
func (c *Claims) CanReadPattern(prefix, pattern string) bool {
	if c == nil || subjects.ValidatePattern(prefix, pattern) != nil {
		return false
	}
	if c.ReadsAll() {
		return true
	}
	rest := strings.TrimPrefix(pattern, prefix+".")
	tokens := strings.SplitN(rest, ".", 3)
	if len(tokens) < 3 || tokens[0] != "library" {
		return false
	}
	return tokens[1] != "*" && c.CanRead(tokens[1])
}

// CanPublish reports whether the token allows publishing events.
func (c *Claims) CanPublish() bool { return c != nil && c.Publish }

// ExpiresAt returns the token's exp; the zero time for nil.
func (c *Claims) ExpiresAt() time.Time {
	if c == nil {
		return time.Time{}
	}
	return c.Expires
}

// ValidateRead checks a read list: at most [MaxReadEntries] entries, each
// [All] or a valid library id ([subjects.ValidateLibraryID]). Errors wrap
// [ErrInvalid] and name the bad entry.
func ValidateRead(read []string) error {
	if len(read) > MaxReadEntries {
		return fmt.Errorf("%w: %d read entries, at most %d", ErrInvalid, len(read), MaxReadEntries)
	}
	for _, id := range read {
		if id == All {
			continue
		}
		if err := subjects.ValidateLibraryID(id); err != nil {
			return fmt.Errorf("%w: read entry: %w", ErrInvalid, err)
		}
	}
	return nil
}

// tokenClaims is the JSON payload of a token.
type tokenClaims struct {
	jwt.RegisteredClaims
	ArrwCDC *grant `json:"arrwcdc,omitempty"`
}

// grant is the "arrwcdc" claim.
type grant struct {
	Read    []string `json:"read"`
	Publish bool     `json:"publish"`
}

// Verifier checks tokens signed with one key and one algorithm.
type Verifier struct {
	method jwt.SigningMethod
	key    any // []byte for HS256, *rsa.PublicKey for RS256
	parser *jwt.Parser
}

// NewHS256 returns a Verifier of HS256 tokens signed with secret, which
// must have at least [MinSecretSize] bytes. The secret is copied.
func NewHS256(secret []byte) (*Verifier, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("auth: HS256 secret of %d bytes: want at least %d", len(secret), MinSecretSize)
	}
	return newVerifier(jwt.SigningMethodHS256, slices.Clone(secret)), nil
}

// NewRS256 returns a Verifier of RS256 tokens signed with the private key
// of pub, which must have at least [MinRSABits] bits.
func NewRS256(pub *rsa.PublicKey) (*Verifier, error) {
	if pub == nil || pub.N == nil {
		return nil, errors.New("auth: RS256: no public key")
	}
	if pub.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("auth: RS256 key of %d bits: want at least %d", pub.N.BitLen(), MinRSABits)
	}
	return newVerifier(jwt.SigningMethodRS256, pub), nil
}

func newVerifier(m jwt.SigningMethod, key any) *Verifier {
	return &Verifier{
		method: m,
		key:    key,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{m.Alg()}),
			jwt.WithExpirationRequired(),
		),
	}
}

// Algorithm is the one algorithm the Verifier accepts: "HS256" or "RS256".
func (v *Verifier) Algorithm() string { return v.method.Alg() }

// Verify checks token (the bare JWT, without "Bearer ") and returns its
// claims. Errors wrap [ErrMissing], [ErrInvalid] or [ErrExpired]; they
// never contain the token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, ErrMissing
	}
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenSize)
	}
	var tc tokenClaims
	_, err := v.parser.ParseWithClaims(token, &tc, v.keyFunc)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		// The signature was checked first: only a genuine token expires.
		return nil, ErrExpired
	default:
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := &Claims{Subject: tc.Subject, Expires: tc.ExpiresAt.Time}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	if tc.ArrwCDC != nil {
		if err := ValidateRead(tc.ArrwCDC.Read); err != nil {
			return nil, err
		}
		c.Read = tc.ArrwCDC.Read
		c.Publish = tc.ArrwCDC.Publish
	}
	return c, nil
}

// keyFunc hands the parser the key, once more making sure the token's
// algorithm is the configured one (WithValidMethods already did).
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if t.Method != v.method {
		return nil, fmt.Errorf("algorithm %v, want %s", t.Header["alg"], v.method.Alg())
	}
	return v.key, nil
}
