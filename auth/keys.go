package auth

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// LoadVerifier reads the key of a Verifier: the HS256 secret in
// secretFile (trailing whitespace, such as the newline an editor adds, is
// ignored) or the RS256 public key in publicKeyFile (PEM: a PUBLIC KEY, an
// RSA PUBLIC KEY or a CERTIFICATE). Both empty means auth is off: it
// returns nil, nil. Both set is an error.
func LoadVerifier(secretFile, publicKeyFile string) (*Verifier, error) {
	switch {
	case secretFile != "" && publicKeyFile != "":
		return nil, errors.New("auth: give a secret file or a public key file, not both")
	case secretFile != "":
		secret, err := ReadSecretFile(secretFile)
		if err != nil {
			return nil, err
		}
		return NewHS256(secret)
	case publicKeyFile != "":
		data, err := os.ReadFile(publicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: public key: %w", err)
		}
		pub, err := jwt.ParseRSAPublicKeyFromPEM(data)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %s: %w", publicKeyFile, err)
		}
		return NewRS256(pub)
	}
	return nil, nil
}

// ReadSecretFile returns the HS256 secret in path without its trailing
// whitespace (spaces, tabs, CR, LF). An empty secret is an error.
func ReadSecretFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: secret: %w", err)
	}
	data = bytes.TrimRight(data, " \t\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("auth: secret file %s is empty", path)
	}
	return data, nil
}

// Signer mints tokens, for development (`arrwcdc token`) and tests.
type Signer struct {
	method jwt.SigningMethod
	key    any // []byte for HS256, *rsa.PrivateKey for RS256
	now    func() time.Time
}

// NewHS256Signer returns a Signer of HS256 tokens; secret must have at
// least [MinSecretSize] bytes. The secret is copied.
func NewHS256Signer(secret []byte) (*Signer, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("auth: HS256 secret of %d bytes: want at least %d", len(secret), MinSecretSize)
	}
	return &Signer{method: jwt.SigningMethodHS256, key: slices.Clone(secret), now: time.Now}, nil
}

// NewRS256Signer returns a Signer of RS256 tokens; key must have at least
// [MinRSABits] bits.
func NewRS256Signer(key *rsa.PrivateKey) (*Signer, error) {
	if key == nil || key.N == nil {
		return nil, errors.New("auth: RS256: no private key")
	}
	if key.N.BitLen() < MinRSABits {
		return nil, fmt.Errorf("auth: RS256 key of %d bits: want at least %d", key.N.BitLen(), MinRSABits)
	}
	return &Signer{method: jwt.SigningMethodRS256, key: key, now: time.Now}, nil
}

// LoadSigner reads the key of a Signer: the HS256 secret in secretFile
// (trailing whitespace ignored) or the RS256 private key in privateKeyFile
// (PEM, PKCS #1 or PKCS #8). Exactly one must be given.
func LoadSigner(secretFile, privateKeyFile string) (*Signer, error) {
	switch {
	case secretFile != "" && privateKeyFile != "":
		return nil, errors.New("auth: give a secret file or a private key file, not both")
	case secretFile != "":
		secret, err := ReadSecretFile(secretFile)
		if err != nil {
			return nil, err
		}
		return NewHS256Signer(secret)
	case privateKeyFile != "":
		data, err := os.ReadFile(privateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: private key: %w", err)
		}
		key, err := jwt.ParseRSAPrivateKeyFromPEM(data)
		if err != nil {
			return nil, fmt.Errorf("auth: private key %s: %w", privateKeyFile, err)
		}
		return NewRS256Signer(key)
	}
	return nil, errors.New("auth: no key: give a secret file or a private key file")
}

// Algorithm is the algorithm of the tokens the Signer mints.
func (s *Signer) Algorithm() string { return s.method.Alg() }

// Sign mints a token holding c's Subject, Read and Publish, issued now
// and expiring ttl from now. With ttl 0 it expires at c.Expires instead
// (which must then be set). A negative ttl mints an already expired token,
// for tests. The read list must pass [ValidateRead].
func (s *Signer) Sign(c Claims, ttl time.Duration) (string, error) {
	if err := ValidateRead(c.Read); err != nil {
		return "", err
	}
	now := s.now()
	exp := c.Expires
	if ttl != 0 {
		exp = now.Add(ttl)
	}
	if exp.IsZero() {
		return "", errors.New("auth: sign: no ttl and no expiry")
	}
	read := c.Read
	if read == nil {
		read = []string{}
	}
	tc := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		ArrwCDC: &grant{Read: read, Publish: c.Publish},
	}
	tok, err := jwt.NewWithClaims(s.method, tc).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return tok, nil
}
