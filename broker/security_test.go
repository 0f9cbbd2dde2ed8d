package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/testcerts"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

// users is a users file with one user of each role: passwords in clear
// and bcrypt, and an nkey.
type users struct {
	file    string
	tapSeed []byte
}

func writeUsers(t *testing.T) users {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("admin-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	file := filepath.Join(t.TempDir(), "users.yaml")
	doc := fmt.Sprintf(`users:
  - {name: app, password: app-pw, role: publisher}
  - {name: bridge, password: bridge-pw, role: bridge}
  - {name: ops, nkey: %s, role: tap}
  - {name: root, password: '%s', role: admin}
`, pub, hash)
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return users{file: file, tapSeed: seed}
}

// client connects and returns the connection with a channel of its
// asynchronous errors (permissions violations arrive there).
func client(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// wantViolation waits for a permissions violation naming subject.
func wantViolation(t *testing.T, errs <-chan error, subject string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
			t.Logf("other async error: %v", err)
		case <-timeout:
			t.Fatalf("no permissions violation for %q", subject)
		}
	}
}

// noViolation makes sure no asynchronous error is pending after a round
// trip to the server.
func noViolation(t *testing.T, nc *nats.Conn, errs <-chan error) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("unexpected async error: %v", err)
	default:
	}
	if err := nc.LastError(); err != nil {
		t.Fatalf("last error: %v", err)
	}
}

func nkeyOption(t *testing.T, seed []byte) nats.Option {
	t.Helper()
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return nats.Nkey(pub, kp.Sign)
}

func publishEvent(t *testing.T, js jetstream.JetStream, subject string) *jetstream.PubAck {
	t.Helper()
	ack, err := js.Publish(t.Context(), subject, []byte(`{}`))
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

func TestRoles(t *testing.T) {
	u := writeUsers(t)
	b := testnats.Broker(t, func(c *broker.Config) { c.UsersFile = u.file })
	url := b.ClientURL()

	// No credentials, a wrong password, a user that does not exist.
	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo("app", "nope")},
		"bcrypt wrong":   {nats.UserInfo("root", "nope")},
		"unknown user":   {nats.UserInfo("eve", "app-pw")},
		"internal user":  {nats.UserInfo(broker.InternalUser, "")},
	} {
		if nc, err := nats.Connect(url, opts...); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
			if nc != nil {
				nc.Close()
			}
			t.Errorf("%s: connect = %v, want Authorization Violation", name, err)
		}
	}

	// The broker's own in-process connection still works.
	internal, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	internal.Close()

	admin, adminErrs := client(t, url, nats.UserInfo("root", "admin-pw")) // bcrypt hash in the file
	adminJS := testnats.JetStream(t, admin)

	t.Run("publisher", func(t *testing.T) {
		nc, errs := client(t, url, nats.UserInfo("app", "app-pw"))
		js := testnats.JetStream(t, nc)
		publishEvent(t, js, "events.library.l1.document.added") // JetStream ack through _INBOX
		if _, err := js.Stream(t.Context(), broker.StreamName); err != nil {
			t.Fatalf("stream info: %v", err)
		}
		noViolation(t, nc, errs)

		if _, err := nc.SubscribeSync("events.>"); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, "events.>")
		if _, err := nc.SubscribeSync("live.events.>"); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, errs, "live.events.>")
		for _, subj := range []string{"other.library.l1.document.added", "live.events.library.l1.document.added", "$JS.API.STREAM.DELETE.EVENTS", "arrwcdc.bridge.stats.events"} {
			if err := nc.Publish(subj, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			wantViolation(t, errs, subj)
		}
	})

	t.Run("tap", func(t *testing.T) {
		nc, errs := client(t, url, nkeyOption(t, u.tapSeed))
		sub, err := nc.SubscribeSync("events.>")
		if err != nil {
			t.Fatal(err)
		}
		live, err := nc.SubscribeSync("live.events.>")
		if err != nil {
			t.Fatal(err)
		}
		noViolation(t, nc, errs)
		publishEvent(t, adminJS, "events.library.l2.document.added")
		for _, s := range []*nats.Subscription{sub, live} {
			if m, err := s.NextMsg(5 * time.Second); err != nil || !strings.HasSuffix(m.Subject, "events.library.l2.document.added") {
				t.Fatalf("tap reads %v: %v", m, err)
			}
		}
		// Replay through an ordered consumer, as tail --all does.
		js := testnats.JetStream(t, nc)
		cons, err := js.OrderedConsumer(t.Context(), broker.StreamName, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatalf("ordered consumer: %v", err)
		}
		if m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || m.Subject() == "" {
			t.Fatalf("replay: %v", err)
		}
		noViolation(t, nc, errs)

		for _, subj := range []string{"events.library.l2.document.added", "events.x", "$JS.API.STREAM.UPDATE.EVENTS", "$JS.API.STREAM.PURGE.EVENTS", "$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.mine", "$JS.API.STREAM.CREATE.MINE"} {
			if err := nc.Publish(subj, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			wantViolation(t, errs, subj)
		}
	})

	t.Run("bridge", func(t *testing.T) {
		nc, errs := client(t, url, nats.UserInfo("bridge", "bridge-pw"))
		js := testnats.JetStream(t, nc)
		// What the bridge does: live and stats subscriptions, stream info,
		// replay, HTTP publish, stats request/reply between bridges.
		if _, err := nc.QueueSubscribeSync("events.>", "arrwcdc-bridge-stats"); err != nil {
			t.Fatal(err)
		}
		live, err := nc.SubscribeSync("live.events.library.l3.>")
		if err != nil {
			t.Fatal(err)
		}
		stats, err := nc.Subscribe("arrwcdc.bridge.stats.events", func(m *nats.Msg) { _ = m.Respond([]byte(`{}`)) })
		if err != nil {
			t.Fatal(err)
		}
		defer stats.Unsubscribe()
		if _, err := nc.Request("arrwcdc.bridge.stats.events", nil, 5*time.Second); err != nil {
			t.Fatalf("stats request: %v", err)
		}
		s, err := js.Stream(t.Context(), broker.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		publishEvent(t, js, "events.library.l3.document.added")
		if _, err := live.NextMsg(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		cons, err := js.OrderedConsumer(t.Context(), broker.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events.library.l3.>"}})
		if err != nil {
			t.Fatalf("ordered consumer: %v", err)
		}
		if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			t.Fatalf("replay: %v", err)
		}
		noViolation(t, nc, errs)

		// The stream's configuration is out of reach.
		cfg := s.CachedInfo().Config
		cfg.MaxAge = time.Minute
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if _, err := js.UpdateStream(ctx, cfg); err == nil {
			t.Fatal("bridge updated the stream")
		}
		wantViolation(t, errs, "$JS.API.STREAM.UPDATE.EVENTS")
		for _, subj := range []string{"$JS.API.STREAM.DELETE.EVENTS", "$JS.API.STREAM.PURGE.EVENTS", "$JS.API.STREAM.CREATE.OTHER", "other.subject"} {
			if err := nc.Publish(subj, nil); err != nil {
				t.Fatal(err)
			}
			wantViolation(t, errs, subj)
		}
		info, err := adminJS.Stream(t.Context(), broker.StreamName)
		if err != nil || info.CachedInfo().Config.MaxAge != 7*24*time.Hour {
			t.Fatalf("stream changed: %v", err)
		}
	})

	t.Run("admin", func(t *testing.T) {
		s, err := adminJS.Stream(t.Context(), broker.StreamName)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.Description = "changed by admin"
		if _, err := adminJS.UpdateStream(t.Context(), cfg); err != nil {
			t.Fatalf("admin update: %v", err)
		}
		if _, err := admin.SubscribeSync(">"); err != nil {
			t.Fatal(err)
		}
		noViolation(t, admin, adminErrs)
	})
}

func TestUsersFileErrors(t *testing.T) {
	dir := t.TempDir()
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	cases := map[string]string{
		"unknown key":      "users: [{name: a, password: p, role: tap, colour: red}]",
		"unknown role":     "users: [{name: a, password: p, role: root}]",
		"no credential":    "users: [{name: a, role: tap}]",
		"both credentials": "users: [{name: a, password: p, nkey: " + pub + ", role: tap}]",
		"bad nkey":         "users: [{name: a, nkey: " + string(seed) + ", role: tap}]",
		"no name":          "users: [{password: p, role: tap}]",
		"twice":            "users: [{name: a, password: p, role: tap}, {name: a, password: q, role: admin}]",
		"internal name":    "users: [{name: " + broker.InternalUser + ", password: p, role: admin}]",
		"space in name":    "users: [{name: 'a b', password: p, role: tap}]",
		"not a mapping":    "- a",
	}
	for name, doc := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := broker.LoadUsers(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
		err := broker.Config{UsersFile: p}.Validate()
		if err == nil || !strings.Contains(err.Error(), "users_file") {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
	if _, err := broker.New(broker.Config{UsersFile: filepath.Join(dir, "missing.yaml")}, nil); err == nil {
		t.Error("missing users file accepted")
	}
}

func TestPermissionsUnknownRole(t *testing.T) {
	p := broker.Permissions("root", "events")
	if p == nil || len(p.Publish.Deny) != 1 || p.Publish.Deny[0] != ">" || p.Subscribe.Deny[0] != ">" {
		t.Fatalf("unknown role: %+v", p)
	}
	if broker.Permissions(broker.RoleAdmin, "events") != nil {
		t.Fatal("admin is restricted")
	}
	pub := broker.Permissions(broker.RolePublisher, "prod.events")
	if pub.Publish.Allow[0] != "prod.events.>" {
		t.Fatalf("publisher under prod.events: %v", pub.Publish.Allow)
	}
}

func TestClientTLS(t *testing.T) {
	certs := testcerts.New(t)
	b := testnats.Broker(t, func(c *broker.Config) {
		c.TLS = broker.TLSConfig{Cert: certs.Cert, Key: certs.Key}
	})
	url := b.ClientURL()
	nc := testnats.Conn(t, url, nats.RootCAs(certs.CA))
	if !nc.TLSRequired() {
		t.Fatal("not TLS")
	}
	if _, err := testnats.JetStream(t, nc).Stream(t.Context(), broker.StreamName); err != nil {
		t.Fatal(err)
	}
	// Without the CA the server's certificate is not trusted; without TLS
	// the server refuses.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without the CA")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v", err)
	}
	other := testcerts.New(t)
	if nc, err := nats.Connect(url, nats.RootCAs(other.CA)); err == nil {
		nc.Close()
		t.Fatal("connected trusting another CA")
	}
	// The in-process connection needs no TLS.
	inproc, err := b.Connect()
	if err != nil {
		t.Fatal(err)
	}
	inproc.Close()
}

func TestClientMutualTLS(t *testing.T) {
	certs := testcerts.New(t)
	b := testnats.Broker(t, func(c *broker.Config) {
		c.TLS = broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}
	})
	url := b.ClientURL()
	testnats.Conn(t, url, nats.RootCAs(certs.CA), nats.ClientCert(certs.ClientCert, certs.ClientKey))
	if nc, err := nats.Connect(url, nats.RootCAs(certs.CA)); err == nil {
		nc.Close()
		t.Fatal("connected without a client certificate")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	certs := testcerts.New(t)
	cases := map[string]broker.Config{
		"cert without key":     {TLS: broker.TLSConfig{Cert: certs.Cert}},
		"key without cert":     {TLS: broker.TLSConfig{Key: certs.Key}},
		"missing file":         {TLS: broker.TLSConfig{Cert: certs.Cert, Key: certs.Dir + "/nope.pem"}},
		"key of another cert":  {TLS: broker.TLSConfig{Cert: certs.Cert, Key: certs.ClientKey}},
		"cluster without ca":   {ClusterListen: "127.0.0.1:0", ClusterTLS: broker.TLSConfig{Cert: certs.Cert, Key: certs.Key}},
		"cluster tls, no node": {ClusterTLS: broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}},
	}
	for name, c := range cases {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestClusterTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster start takes seconds")
	}
	certs := testcerts.New(t)
	tlsc := broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}
	nodes := testnats.Cluster(t, 2, func(c *broker.Config) { c.ClusterTLS = tlsc })
	for _, n := range nodes {
		if n.Server().NumRoutes() == 0 {
			t.Fatalf("%s has no route", n.Server().Name())
		}
	}
	// An event published on one node arrives on the other, over TLS routes.
	sub, err := testnats.Conn(t, nodes[1].ClientURL()).SubscribeSync("live.events.>")
	if err != nil {
		t.Fatal(err)
	}
	// Either node may lead the stream and republish: both must know of
	// the subscription (NumSubscriptions counted the system's own, so it
	// never waited).
	const subject = "events.library.l1.document.added"
	testnats.Eventually(t, 10*time.Second, func() error {
		for _, n := range nodes {
			if !n.Server().GlobalAccount().SubscriptionInterest("live." + subject) {
				return fmt.Errorf("%s: no interest in live.%s yet", n.Server().Name(), subject)
			}
		}
		return nil
	})
	js := testnats.JetStream(t, testnats.Conn(t, nodes[0].ClientURL()))
	publishEvent(t, js, subject)
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), broker.StreamName)
	if err != nil || s.CachedInfo().Config.Replicas != 2 {
		t.Fatalf("stream: %v", err)
	}
}
