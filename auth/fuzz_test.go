package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/subjects"
)

// fuzzSecret signs the seed tokens in testdata/fuzz (they expire in 2100).
var fuzzSecret = []byte("fuzz-secret-0123456789abcdef0123456789")

// FuzzVerify feeds arbitrary tokens to an HS256 Verifier. It must never
// panic, and it must accept nothing but tokens whose header says HS256 and
// whose signature is the HMAC of the key (checked here independently of
// the jwt library), with exp in the future and a valid read list.
func FuzzVerify(f *testing.F) {
	for _, seed := range []string{
		"", "a.b.c", "..", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.",
	} {
		f.Add(seed)
	}
	v, err := auth.NewHS256(fuzzSecret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatal("claims with an error")
			}
			return
		}
		parts := strings.Split(strings.TrimSpace(token), ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d segments", len(parts))
		}
		var hdr struct {
			Alg string `json:"alg"`
		}
		h, _ := base64.RawURLEncoding.DecodeString(parts[0])
		if json.Unmarshal(h, &hdr) != nil || hdr.Alg != "HS256" {
			t.Fatalf("accepted header %q", h)
		}
		mac := hmac.New(sha256.New, fuzzSecret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatal("accepted a token not signed by the key")
		}
		checkClaims(t, c)
	})
}

// FuzzClaims signs arbitrary payloads with the key, as a careless minter
// would, so the fuzzer reaches claim parsing: whatever Verify accepts has a
// future exp and only valid read entries.
func FuzzClaims(f *testing.F) {
	for _, seed := range []string{
		`{"exp":4102444800,"arrwcdc":{"read":["lib-1"],"publish":true}}`,
		`{"exp":4102444800,"arrwcdc":{"read":["*"]}}`,
		`{"exp":4102444800,"arrwcdc":{"read":[">"]}}`,
		`{"exp":4102444800,"arrwcdc":{"read":["lib.1"]}}`,
		`{"exp":1,"arrwcdc":{"read":["lib-1"]}}`,
		`{"exp":4102444800.5,"nbf":1,"sub":"x","arrwcdc":null}`,
		`{"exp":"4102444800"}`,
		`{"arrwcdc":{"read":["lib-1"]}}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	v, _ := auth.NewHS256(fuzzSecret)
	f.Fuzz(func(t *testing.T, payload []byte) {
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		signing := hdr + "." + base64.RawURLEncoding.EncodeToString(payload)
		sig, err := jwt.SigningMethodHS256.Sign(signing, fuzzSecret)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(signing + "." + base64.RawURLEncoding.EncodeToString(sig))
		if err != nil {
			return
		}
		checkClaims(t, c)
	})
}

func checkClaims(t *testing.T, c *auth.Claims) {
	t.Helper()
	if c.ExpiresAt().IsZero() || !c.ExpiresAt().After(time.Now().Add(-time.Second)) {
		t.Fatalf("accepted exp %v", c.ExpiresAt())
	}
	if len(c.Read) > auth.MaxReadEntries {
		t.Fatalf("accepted %d read entries", len(c.Read))
	}
	for _, id := range c.Read {
		if id != auth.All && subjects.ValidateLibraryID(id) != nil {
			t.Fatalf("accepted read entry %q", id)
		}
	}
}

// TestFuzzSeeds checks that the seed corpus reaches the accepting branch:
// its valid_* tokens verify.
func TestFuzzSeeds(t *testing.T) {
	v, _ := auth.NewHS256(fuzzSecret)
	entries, err := os.ReadDir("testdata/fuzz/FuzzVerify")
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata/fuzz/FuzzVerify", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		_, quoted, _ := strings.Cut(strings.TrimSpace(string(data)), "string(")
		tok, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		_, err = v.Verify(tok)
		if valid := strings.HasPrefix(e.Name(), "valid_"); valid != (err == nil) {
			t.Errorf("%s: %v", e.Name(), err)
		}
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		t.Fatal("no seed is accepted")
	}
}
