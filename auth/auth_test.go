package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

var rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

func hsVerifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hsSigner(t *testing.T, key []byte) *auth.Signer {
	t.Helper()
	s, err := auth.NewHS256Signer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t *testing.T, s *auth.Signer, c auth.Claims, ttl time.Duration) string {
	t.Helper()
	tok, err := s.Sign(c, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// raw signs any claims with any method, bypassing the Signer's checks: an
// attacker's or a buggy minter's token.
func raw(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func future() int64 { return time.Now().Add(time.Hour).Unix() }

func b64(v any) string {
	data, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(data)
}

func TestVerifyGood(t *testing.T) {
	v := hsVerifier(t)
	tok := sign(t, hsSigner(t, secret), auth.Claims{Subject: "alice", Read: []string{"lib-1", "550e8400-e29b-41d4-a716-446655440000"}, Publish: true}, time.Hour)
	c, err := v.Verify(" " + tok + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || !c.CanPublish() || len(c.Read) != 2 || c.ReadsAll() {
		t.Fatalf("claims = %+v", c)
	}
	if d := time.Until(c.ExpiresAt()); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expires in %v", d)
	}
	if c.IssuedAt.IsZero() {
		t.Fatal("no iat")
	}
	if v.Algorithm() != "HS256" {
		t.Fatal(v.Algorithm())
	}
}

func TestVerifyRefuses(t *testing.T) {
	priv, other := rsaKeys()
	hs := hsSigner(t, secret)
	good := auth.Claims{Subject: "mallory", Read: []string{"lib-1"}}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&priv.PublicKey))})
	hsTok := sign(t, hs, good, time.Hour)
	parts := strings.Split(hsTok, ".")

	rs, err := auth.NewRS256(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsSigner, _ := auth.NewRS256Signer(priv)
	otherSigner, _ := auth.NewRS256Signer(other)
	grant := map[string]any{"read": []string{"lib-1"}}

	cases := []struct {
		name  string
		v     *auth.Verifier
		token string
		want  error
	}{
		{"no token", hsVerifier(t), "", auth.ErrMissing},
		{"blank token", hsVerifier(t), " \t ", auth.ErrMissing},
		{"garbage", hsVerifier(t), "not-a-jwt", auth.ErrInvalid},
		{"expired", hsVerifier(t), sign(t, hs, good, -time.Second), auth.ErrExpired},
		{"wrong secret", hsVerifier(t), sign(t, hsSigner(t, []byte(strings.Repeat("x", 40))), good, time.Hour), auth.ErrInvalid},
		{"wrong secret and expired", hsVerifier(t), sign(t, hsSigner(t, []byte(strings.Repeat("x", 40))), good, -time.Hour), auth.ErrInvalid},
		{"payload tampered", hsVerifier(t), parts[0] + "." + b64(map[string]any{"sub": "mallory", "exp": future(), "arrwcdc": map[string]any{"read": []string{"*"}}}) + "." + parts[2], auth.ErrInvalid},
		{"signature stripped", hsVerifier(t), parts[0] + "." + parts[1] + ".", auth.ErrInvalid},
		{"alg none", hsVerifier(t), raw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"alg none by hand", hsVerifier(t), b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(map[string]any{"exp": future(), "arrwcdc": grant}) + ".", auth.ErrInvalid},
		{"alg NONE with HS256 signature", hsVerifier(t), b64(map[string]string{"alg": "NONE"}) + "." + parts[1] + "." + parts[2], auth.ErrInvalid},
		{"HS512 with the secret", hsVerifier(t), raw(t, jwt.SigningMethodHS512, secret, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"HS384 with the secret", hsVerifier(t), raw(t, jwt.SigningMethodHS384, secret, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"RS256 token at HS256 verifier", hsVerifier(t), sign(t, rsSigner, good, time.Hour), auth.ErrInvalid},
		{"HS256 token at RS256 verifier", rs, hsTok, auth.ErrInvalid},
		{"HS256 keyed with the RSA public key (alg confusion)", rs, raw(t, jwt.SigningMethodHS256, pubPEM, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"RS256 other key", rs, sign(t, otherSigner, good, time.Hour), auth.ErrInvalid},
		{"RS512 same key", rs, raw(t, jwt.SigningMethodRS512, priv, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"PS256 same key", rs, raw(t, jwt.SigningMethodPS256, priv, jwt.MapClaims{"exp": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"no exp", hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "x", "arrwcdc": grant}), auth.ErrInvalid},
		{"exp not a number", hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": "tomorrow", "arrwcdc": grant}), auth.ErrInvalid},
		{"not valid yet", hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future(), "nbf": future(), "arrwcdc": grant}), auth.ErrInvalid},
		{"read is not a list", hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future(), "arrwcdc": map[string]any{"read": "*"}}), auth.ErrInvalid},
		{"too large", hsVerifier(t), strings.Repeat("a", auth.MaxTokenSize+1), auth.ErrInvalid},
	}
	for _, bad := range []string{">", "lib-1.>", "*.x", "lib.1", "", "a b", "lib-*", "lib-1\x00", "événement", strings.Repeat("a", 129)} {
		cases = append(cases, struct {
			name  string
			v     *auth.Verifier
			token string
			want  error
		}{"read entry " + bad, hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future(), "arrwcdc": map[string]any{"read": []string{"lib-2", bad}}}), auth.ErrInvalid})
	}
	many := make([]string, auth.MaxReadEntries+1)
	for i := range many {
		many[i] = "l"
	}
	cases = append(cases, struct {
		name  string
		v     *auth.Verifier
		token string
		want  error
	}{"too many read entries", hsVerifier(t), raw(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"exp": future(), "arrwcdc": map[string]any{"read": many}}), auth.ErrInvalid})

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := c.v.Verify(c.token)
			if !errors.Is(err, c.want) || claims != nil {
				t.Fatalf("Verify = %+v, %v; want %v", claims, err, c.want)
			}
			for _, other := range []error{auth.ErrMissing, auth.ErrInvalid, auth.ErrExpired} {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("%v also wraps %v", err, other)
				}
			}
			if c.token != "" && len(c.token) > 20 && strings.Contains(err.Error(), c.token) {
				t.Fatal("error quotes the token")
			}
		})
	}
}

func TestRS256(t *testing.T) {
	priv, _ := rsaKeys()
	s, err := auth.NewRS256Signer(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewRS256(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(sign(t, s, auth.Claims{Read: []string{"*"}}, time.Minute))
	if err != nil || !c.ReadsAll() || !c.CanRead("anything") || c.CanPublish() || v.Algorithm() != "RS256" {
		t.Fatalf("claims %+v, %v", c, err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := auth.NewRS256(&small.PublicKey); err == nil {
		t.Error("1024-bit key accepted")
	}
	if _, err := auth.NewRS256Signer(small); err == nil {
		t.Error("1024-bit signing key accepted")
	}
	if _, err := auth.NewHS256([]byte("short")); err == nil {
		t.Error("short secret accepted")
	}
}

func TestCanRead(t *testing.T) {
	c := &auth.Claims{Read: []string{"lib-1", "A"}}
	for id, want := range map[string]bool{
		"lib-1": true, "A": true, "lib-10": false, "lib-": false, "lib": false, "a": false,
		"lib-1.x": false, "*": false, ">": false, "": false, "lib-1 ": false,
	} {
		if got := c.CanRead(id); got != want {
			t.Errorf("CanRead(%q) = %v", id, got)
		}
	}
	ten := &auth.Claims{Read: []string{"lib-10"}}
	if ten.CanRead("lib-1") {
		t.Error("lib-10 token reads lib-1")
	}
	var none *auth.Claims
	if none.CanRead("lib-1") || none.CanPublish() || none.ReadsAll() || !none.ExpiresAt().IsZero() || none.CanReadPattern("events", "events.>") {
		t.Error("nil claims grant something")
	}
	if (&auth.Claims{}).CanRead("lib-1") {
		t.Error("empty claims read")
	}
	star := &auth.Claims{Read: []string{"*"}}
	if star.CanRead("bad id") || !star.CanRead("lib-10") {
		t.Error("* token")
	}
}

func TestCanReadPattern(t *testing.T) {
	one := &auth.Claims{Read: []string{"lib-1"}}
	all := &auth.Claims{Read: []string{"*"}}
	cases := []struct {
		pattern  string
		one, all bool
	}{
		{"events.library.lib-1.>", true, true},
		{"events.library.lib-1.document.*", true, true},
		{"events.library.lib-1.document.added", true, true},
		{"events.library.lib-1.*.deleted", true, true},
		{"events.library.lib-10.>", false, true},
		{"events.library.lib-.>", false, true},
		{"events.library.*.>", false, true},
		{"events.library.*.document.added", false, true},
		{"events.library.>", false, true},
		{"events.>", false, true},
		{"events.*.lib-1.>", false, true},
		{">", false, false},
		{"events.library.lib-1", false, false},
		{"other.library.lib-1.>", false, false},
		{"live.events.library.lib-1.>", false, false},
		{"events.library.lib-1.>.x", false, false},
		{"events.library.lib 1.>", false, false},
	}
	for _, c := range cases {
		if got := one.CanReadPattern("events", c.pattern); got != c.one {
			t.Errorf("lib-1 token: CanReadPattern(%q) = %v", c.pattern, got)
		}
		if got := all.CanReadPattern("events", c.pattern); got != c.all {
			t.Errorf("* token: CanReadPattern(%q) = %v", c.pattern, got)
		}
	}
	if !one.CanReadPattern("prod.events", "prod.events.library.lib-1.>") || one.CanReadPattern("prod.events", "events.library.lib-1.>") {
		t.Error("prefix prod.events")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretFile := write("secret", append(append([]byte{}, secret...), " \t\r\n\n"...))
	v, err := auth.LoadVerifier(secretFile, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.LoadSigner(secretFile, "")
	if err != nil {
		t.Fatal(err)
	}
	// The trailing whitespace is not part of the secret: the file and the
	// bare secret sign alike.
	if _, err := v.Verify(sign(t, hsSigner(t, secret), auth.Claims{}, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := hsVerifier(t).Verify(sign(t, s, auth.Claims{}, time.Minute)); err != nil {
		t.Fatal(err)
	}

	priv, _ := rsaKeys()
	pubFile := write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&priv.PublicKey))}))
	pkcs1Pub := write("pub1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&priv.PublicKey)}))
	privFile := write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(priv))}))
	rs, err := auth.LoadSigner("", privFile)
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, rs, auth.Claims{Read: []string{"lib-1"}}, time.Minute)
	for _, f := range []string{pubFile, pkcs1Pub} {
		rv, err := auth.LoadVerifier("", f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rv.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}

	if v, err := auth.LoadVerifier("", ""); v != nil || err != nil {
		t.Errorf("no files: %v, %v; want auth off", v, err)
	}
	for name, files := range map[string][2]string{
		"both":          {secretFile, pubFile},
		"missing":       {filepath.Join(dir, "nope"), ""},
		"empty secret":  {write("empty", []byte(" \n")), ""},
		"short secret":  {write("short", []byte("abc\n")), ""},
		"not PEM":       {"", secretFile},
		"private key":   {"", write("garbage.pem", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))},
		"missing pub":   {"", filepath.Join(dir, "nope.pem")},
		"dir as secret": {dir, ""},
	} {
		if v, err := auth.LoadVerifier(files[0], files[1]); err == nil || v != nil {
			t.Errorf("%s: LoadVerifier accepted", name)
		}
	}
	if _, err := auth.LoadSigner("", ""); err == nil {
		t.Error("LoadSigner without key")
	}
	if _, err := auth.LoadSigner(secretFile, privFile); err == nil {
		t.Error("LoadSigner with both")
	}
}

func TestSign(t *testing.T) {
	s := hsSigner(t, secret)
	if _, err := s.Sign(auth.Claims{Read: []string{"lib.1"}}, time.Hour); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("bad read entry: %v", err)
	}
	if _, err := s.Sign(auth.Claims{}, 0); err == nil {
		t.Error("no expiry")
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c, err := hsVerifier(t).Verify(sign(t, s, auth.Claims{Expires: exp}, 0))
	if err != nil || !c.ExpiresAt().Equal(exp) || len(c.Read) != 0 {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestFromRequest(t *testing.T) {
	cases := []struct {
		name, url, header string
		want              string
		err               error
	}{
		{"bearer", "/x", "Bearer abc", "abc", nil},
		{"bearer lower case", "/x", "bearer abc", "abc", nil},
		{"query", "/x?token=abc", "", "abc", nil},
		{"header wins", "/x?token=q", "Bearer h", "h", nil},
		{"none", "/x", "", "", auth.ErrMissing},
		{"empty query", "/x?token=", "", "", auth.ErrMissing},
		{"empty bearer", "/x", "Bearer ", "", auth.ErrMissing},
		{"basic", "/x", "Basic YTpi", "", auth.ErrInvalid},
		{"twice in query", "/x?token=a&token=b", "", "", auth.ErrInvalid},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.url, nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		got, err := auth.FromRequest(r)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if _, err := auth.FromRequest(r); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("two headers: %v", err)
	}

	v := hsVerifier(t)
	r = httptest.NewRequest("GET", "/x?token="+sign(t, hsSigner(t, secret), auth.Claims{Read: []string{"lib-1"}}, time.Minute), nil)
	if c, err := v.VerifyRequest(r); err != nil || !c.CanRead("lib-1") {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := v.VerifyRequest(httptest.NewRequest("GET", "/x", nil)); !errors.Is(err, auth.ErrMissing) {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
