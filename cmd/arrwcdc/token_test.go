package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// writeSecret writes an HS256 secret with a trailing newline, as an editor
// leaves it.
func writeSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("a-development-secret-of-32-bytes-or-more\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mintToken(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runOnce(t, "", append([]string{"token"}, args...)...)
	if err != nil {
		t.Fatalf("token %q: %v", args, err)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Fatalf("token output %q", out)
	}
	return tok
}

func TestTokenCommand(t *testing.T) {
	secret := writeSecret(t)
	v, err := auth.LoadVerifier(secret, "")
	if err != nil {
		t.Fatal(err)
	}

	c, err := v.Verify(mintToken(t, "--library", "lib-1", "--library", "lib-2", "--secret-file", secret))
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanRead("lib-1") || !c.CanRead("lib-2") || c.CanRead("lib-10") || c.ReadsAll() || c.CanPublish() || c.Subject != "dev" {
		t.Fatalf("claims = %+v", c)
	}
	if d := time.Until(c.ExpiresAt()); d > time.Hour || d < 59*time.Minute {
		t.Fatalf("expires in %v, want 1h", d)
	}

	c, err = v.Verify(mintToken(t, "--all", "--publish", "--ttl", "5m", "--sub", "ops", "--secret-file", secret))
	if err != nil {
		t.Fatal(err)
	}
	if !c.ReadsAll() || !c.CanPublish() || c.Subject != "ops" || time.Until(c.ExpiresAt()) > 5*time.Minute {
		t.Fatalf("claims = %+v", c)
	}

	for _, args := range [][]string{
		{"--secret-file", secret},
		{"--library", "lib.1", "--secret-file", secret},
		{"--library", "a", "--all", "--secret-file", secret},
		{"--library", "a"},
		{"--library", "a", "--ttl", "0s", "--secret-file", secret},
	} {
		out, err := runOnce(t, "", append([]string{"token"}, args...)...)
		if _, ok := errors.AsType[*config.FieldError](err); !ok || out != "" {
			t.Errorf("token %q = %q, %v; want a setting error and no output", args, out, err)
		}
	}
}

// TestOneTokenBothDoors mints a token with the binary and uses it as the
// NATS auth token of the nats CLI against `arrwcdc serve
// --token-secret-file` (the auth callout); `arrwcdc publish` logs in as a
// publisher of the users file.
func TestOneTokenBothDoors(t *testing.T) {
	secret := writeSecret(t)
	users := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(users, []byte("users: [{name: app, password: app-pw, role: publisher}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// serve: the bridge beside the broker connects as the internal user,
	// the callout is on for everyone else.
	b := start(t, "", "serve", "--nats-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--users-file", users, "--token-secret-file", secret, "--log-level", "warn")
	b.waitOutput(t, `HTTP:\s+(http://\S+)`)
	url := b.waitOutput(t, `NATS:\s+(nats://\S+)`)
	tok := mintToken(t, "--library", "lib-1", "--secret-file", secret)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out syncBuffer
	sub := natsCmd(t, ctx, url, "--token", tok, "sub", "events.library.lib-1.>", "--count", "1")
	sub.Stdout, sub.Stderr = &out, &out
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sub.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for received := false; !received; {
		select {
		case err := <-done:
			if err != nil || !strings.Contains(out.String(), "events.library.lib-1.document.added") {
				t.Fatalf("nats sub: %v\n%s", err, out.String())
			}
			received = true
		case <-tick.C:
			if _, err := runOnce(t, "", "publish", "--nats-url", url, "--nats-user", "app", "--nats-password", "app-pw",
				"--library", "lib-1", "--type", "document.added"); err != nil {
				t.Fatalf("publish: %v", err)
			}
		case <-ctx.Done():
			t.Fatalf("nats sub got nothing:\n%s", out.String())
		}
	}

	// The same token cannot read another library, and publish without
	// credentials is refused.
	denied, err := natsCmd(t, ctx, url, "--token", tok, "sub", "events.library.lib-2.>", "--count", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(denied), "permissions violation") {
		t.Fatalf("lib-2: %v\n%s", err, denied)
	}
	if _, err := runOnce(t, "", "publish", "--nats-url", url, "--library", "lib-1", "--type", "document.added"); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("anonymous publish: %v", err)
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestTailAsTap replays and follows the stream with `arrwcdc tail --all`
// logged in as a tap user of the users file (an nkey seed file), and
// publishes with `arrwcdc publish` as a publisher.
func TestTailAsTap(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "tap.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	b := testnats.Broker(t, func(c *broker.Config) {
		c.Users = []broker.User{{Name: "app", Password: "app-pw", Role: broker.RolePublisher}, {Name: "ops", NKey: pub, Role: broker.RoleTap}}
	})
	url := b.ClientURL()
	publish := func(id string) {
		t.Helper()
		if _, err := runOnce(t, "", "publish", "--nats-url", url, "--nats-user", "app", "--nats-password", "app-pw",
			"--library", "lib-1", "--type", "document.added", "--id", id); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	publish("stored-1")
	tail := start(t, "", "tail", "--nats-url", url, "--nats-nkey-seed-file", seedFile, "--all", "--json")
	tail.waitOutput(t, `"id":"(stored-1)"`)
	publish("live-2")
	tail.waitOutput(t, `"id":"(live-2)"`)
	if err := tail.stop(t); err != nil {
		t.Fatal(err)
	}
	if s := tail.stderr.String(); strings.Contains(s, "ermission") {
		t.Fatalf("tail as tap: %s", s)
	}
	// Without credentials tail cannot connect.
	if _, err := runOnce(t, "", "tail", "--nats-url", url); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("anonymous tail: %v", err)
	}
}
