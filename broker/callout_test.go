package broker_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

var tokenSecret = []byte("callout-test-secret-0123456789abcdef")

// calloutBroker starts a node whose auth callout accepts tokens signed
// with tokenSecret, with one admin user (root/root-pw) to publish events.
func calloutBroker(t *testing.T, edit ...func(*broker.Config)) (*broker.Broker, *auth.Signer) {
	t.Helper()
	v, err := auth.NewHS256(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	s, err := auth.NewHS256Signer(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	b := testnats.Broker(t, append([]func(*broker.Config){func(c *broker.Config) {
		c.Tokens = v
		c.Users = []broker.User{{Name: "root", Password: "root-pw", Role: broker.RoleAdmin}}
	}}, edit...)...)
	return b, s
}

func token(t *testing.T, s *auth.Signer, ttl time.Duration, read ...string) string {
	t.Helper()
	tok, err := s.Sign(auth.Claims{Subject: "reader", Read: read}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func adminJetStream(t *testing.T, b *broker.Broker) jetstream.JetStream {
	t.Helper()
	return testnats.JetStream(t, testnats.Conn(t, b.ClientURL(), nats.UserInfo("root", "root-pw")))
}

func TestCalloutToken(t *testing.T) {
	b, s := calloutBroker(t)
	url := b.ClientURL()
	js := adminJetStream(t, b)

	nc, errs := client(t, url, nats.Token(token(t, s, time.Hour, "A")))
	sub, err := nc.SubscribeSync("events.library.A.>")
	if err != nil {
		t.Fatal(err)
	}
	live, err := nc.SubscribeSync("live.events.library.A.>")
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := nc.SubscribeSync("events.library.A.document.added")
	if err != nil {
		t.Fatal(err)
	}
	noViolation(t, nc, errs)

	publishEvent(t, js, "events.library.B.document.added")
	publishEvent(t, js, "events.library.A1.document.added")
	publishEvent(t, js, "events.library.A.document.added")
	for _, s := range []*nats.Subscription{sub, live, narrow} {
		m, err := s.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.Subject, "events.library.A.document.added") {
			t.Fatalf("token for A got %s", m.Subject)
		}
	}

	// Nothing else: other libraries, wider patterns, a neighbour whose id
	// starts with A, any publish.
	for _, subj := range []string{"events.library.B.>", "events.>", "events.library.*.>", "events.library.A1.>", ">", "live.events.>", "_INBOX.>", "$JS.API.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, subj)
	}
	for _, subj := range []string{"events.library.A.document.added", "$JS.API.INFO", "$JS.API.STREAM.INFO.EVENTS", "$SYS.REQ.USER.AUTH", "_INBOX.x"} {
		if err := nc.Publish(subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, subj)
	}
}

func TestCalloutWebSocket(t *testing.T) {
	// nats.ws in a browser: the same token over the NATS WebSocket listener.
	b, s := calloutBroker(t, func(c *broker.Config) { c.WebSocketListen = "127.0.0.1:0" })
	ws := b.WebSocketURL()
	if !strings.HasPrefix(ws, "ws://127.0.0.1:") {
		t.Fatalf("websocket url %q", ws)
	}
	nc, errs := client(t, ws, nats.Token(token(t, s, time.Hour, "A")))
	sub, err := nc.SubscribeSync("live.events.library.A.>")
	if err != nil {
		t.Fatal(err)
	}
	noViolation(t, nc, errs)
	publishEvent(t, adminJetStream(t, b), "events.library.A.document.added")
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("events.library.B.>"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "events.library.B.>")
	if nc, err := nats.Connect(ws); err == nil {
		nc.Close()
		t.Fatal("anonymous websocket client connected")
	}
	if testnats.Broker(t).WebSocketURL() != "" {
		t.Fatal("websocket listener on by default")
	}
}

func TestCalloutGrants(t *testing.T) {
	b, s := calloutBroker(t)
	url := b.ClientURL()

	// "*" reads every library, but only through the library grammar.
	nc, errs := client(t, url, nats.Token(token(t, s, time.Hour, "*")))
	for _, subj := range []string{"events.library.*.>", "events.library.X.document.added", "live.events.library.*.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	noViolation(t, nc, errs)
	if _, err := nc.SubscribeSync("events.>"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "events.>")

	// No library at all: connected, allowed nothing.
	nc, errs = client(t, url, nats.Token(token(t, s, time.Hour)))
	if _, err := nc.SubscribeSync("events.library.A.>"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "events.library.A.>")

	// Two libraries.
	nc, errs = client(t, url, nats.Token(token(t, s, time.Hour, "lib-1", "lib-2")))
	for _, subj := range []string{"events.library.lib-1.>", "events.library.lib-2.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
	}
	noViolation(t, nc, errs)
	if _, err := nc.SubscribeSync("events.library.lib-10.>"); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, errs, "events.library.lib-10.>")
}

func TestCalloutRefuses(t *testing.T) {
	b, s := calloutBroker(t)
	url := b.ClientURL()
	forger, _ := auth.NewHS256Signer([]byte("not-the-broker-secret-0123456789abcdef"))
	cases := map[string][]nats.Option{
		"no credentials": nil,
		"expired token":  {nats.Token(token(t, s, -time.Minute, "A"))},
		"forged token":   {nats.Token(token(t, forger, time.Hour, "A"))},
		"garbage token":  {nats.Token("not.a.token")},
		"alg none":       {nats.Token("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjQxMDI0NDQ4MDAsImFycndjZGMiOnsicmVhZCI6WyIqIl19fQ.")},
		"password":       {nats.UserInfo("someone", "pw")},
		"admin wrong pw": {nats.UserInfo("root", "nope")},
	}
	for name, opts := range cases {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
			continue
		}
		if !strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("%s: %v, want Authorization Violation", name, err)
		}
	}
}

func TestCalloutExpiryDisconnects(t *testing.T) {
	b, s := calloutBroker(t)
	// JWT expiry has whole seconds: this token lives 1 to 2 s.
	tok := token(t, s, 2*time.Second, "A")
	c, err := auth.NewHS256(tokenSecret)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := c.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	disconnected := make(chan error, 1)
	nc, err := nats.Connect(b.ClientURL(), nats.Token(tok), nats.NoReconnect(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case disconnected <- err:
			default:
			}
		}),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("events.library.A.>"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-disconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("still connected after the token expired")
	}
	// The server closed it at the token's exp, not before (the client may
	// see "authentication expired" or just the closed socket).
	if early := time.Until(claims.ExpiresAt()); early > 100*time.Millisecond {
		t.Fatalf("disconnected %v before the token expired (last error %v)", early, nc.LastError())
	}
}

func TestCalloutServesInternalAndUsers(t *testing.T) {
	// Provisioning ran through the internal user (Start returned); the
	// users of the users file skip the callout.
	u := writeUsers(t)
	b, _ := calloutBroker(t, func(c *broker.Config) { c.UsersFile, c.Users = u.file, nil })
	js := testnats.JetStream(t, testnats.Conn(t, b.ClientURL(), nats.UserInfo("app", "app-pw")))
	publishEvent(t, js, "events.library.A.document.added")
	testnats.Conn(t, b.ClientURL(), nkeyOption(t, u.tapSeed))
	nc, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

func TestCalloutCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes seconds")
	}
	// Each node answers its own requests; the other node's responder,
	// reached through the routes, must stay silent (it signs with another
	// key).
	v, _ := auth.NewHS256(tokenSecret)
	s, _ := auth.NewHS256Signer(tokenSecret)
	nodes := testnats.Cluster(t, 2, func(c *broker.Config) { c.Tokens = v })
	for range 5 {
		for _, n := range nodes {
			nc, err := nats.Connect(n.ClientURL(), nats.Token(token(t, s, time.Hour, "A")))
			if err != nil {
				t.Fatalf("%s: %v", n.Server().Name(), err)
			}
			nc.Close()
		}
	}
}

func TestTokenSubjects(t *testing.T) {
	got := broker.TokenSubjects("prod.events", &auth.Claims{Read: []string{"a", "b"}})
	want := []string{"prod.events.library.a.>", "live.prod.events.library.a.>", "prod.events.library.b.>", "live.prod.events.library.b.>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v", got)
	}
	if got := broker.TokenSubjects("events", &auth.Claims{Read: []string{"a", "*"}}); strings.Join(got, " ") != "events.library.*.> live.events.library.*.>" {
		t.Fatalf("* got %v", got)
	}
	if got := broker.TokenSubjects("events", &auth.Claims{Read: []string{">", "a.b"}}); len(got) != 0 {
		t.Fatalf("invalid entries got %v", got)
	}
}

// cli runs the nats CLI against url until it exits or ctx ends, with a
// private config dir.
func cli(t *testing.T, ctx context.Context, url string, args ...string) *exec.Cmd {
	t.Helper()
	return testnats.CLI(t, ctx, url, args...)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestCalloutNATSCLI(t *testing.T) {
	b, s := calloutBroker(t)
	url := b.ClientURL()
	js := adminJetStream(t, b)
	tok := token(t, s, time.Hour, "A")

	t.Run("sub own library", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var out syncBuffer
		cmd := cli(t, ctx, url, "--token", tok, "sub", "events.library.A.>", "--count", "1")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Publish until the CLI, once subscribed, receives one and exits.
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				if err != nil || !strings.Contains(out.String(), "events.library.A.document.added") {
					t.Fatalf("nats sub: %v\n%s", err, out.String())
				}
				return
			case <-tick.C:
				publishEvent(t, js, "events.library.A.document.added")
			case <-ctx.Done():
				t.Fatalf("nats sub got nothing:\n%s", out.String())
			}
		}
	})

	for _, subj := range []string{"events.library.B.>", "events.>"} {
		t.Run("sub "+subj, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out, err := cli(t, ctx, url, "--token", tok, "sub", subj, "--count", "1").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "nats: permissions violation") {
				t.Fatalf("nats sub %s: %v\n%s", subj, err, out)
			}
		})
	}

	t.Run("pub", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		out, err := cli(t, ctx, url, "--token", tok, "pub", "events.library.A.document.added", "{}").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permissions violation") {
			t.Fatalf("nats pub with a token: %v\n%s", err, out)
		}
	})

	forger, _ := auth.NewHS256Signer([]byte("not-the-broker-secret-0123456789abcdef"))
	for name, bad := range map[string]string{
		"expired": token(t, s, -time.Minute, "A"),
		"forged":  token(t, forger, time.Hour, "A"),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out, err := cli(t, ctx, url, "--token", bad, "sub", "events.library.A.>", "--count", "1").CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Authorization Violation") {
				t.Fatalf("nats sub with %s token: %v\n%s", name, err, out)
			}
		})
	}
}

func TestTapNATSCLI(t *testing.T) {
	u := writeUsers(t)
	b := testnats.Broker(t, func(c *broker.Config) { c.UsersFile = u.file })
	url := b.ClientURL()
	js := testnats.JetStream(t, testnats.Conn(t, url, nats.UserInfo("app", "app-pw")))
	publishEvent(t, js, "events.library.A.document.added")
	seedFile := filepath.Join(t.TempDir(), "tap.nk")
	if err := os.WriteFile(seedFile, u.tapSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// Replay of the stored event through JetStream, as the tap user.
	out, err := cli(t, ctx, url, "--nkey", seedFile, "sub", "--all", "events.>", "--count", "1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "events.library.A.document.added") {
		t.Fatalf("tap sub --all: %v\n%s", err, out)
	}
	out, err = cli(t, ctx, url, "--nkey", seedFile, "pub", "events.library.A.document.added", "{}").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permissions violation") {
		t.Fatalf("tap pub: %v\n%s", err, out)
	}
	// The publisher cannot read.
	out, err = cli(t, ctx, url, "--user", "app", "--password", "app-pw", "sub", "events.>", "--count", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permissions violation") {
		t.Fatalf("publisher sub: %v\n%s", err, out)
	}
}
