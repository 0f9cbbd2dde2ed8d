package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/internal/testcerts"
	"github.com/arrwdb/arrwcdc/internal/testnats"
)

func secretFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fieldErrs returns the Field of each FieldError in err.
func fieldErrs(err error) []string {
	var out []string
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	for _, e := range list {
		if fe, ok := errors.AsType[*config.FieldError](e); ok {
			out = append(out, fe.Field)
		}
	}
	return out
}

func wantFieldErr(t *testing.T, command string, args []string, kv map[string]string, field string) {
	t.Helper()
	_, err := load(t, command, args, kv)
	if err == nil {
		t.Fatalf("Load(%s, %q) accepted", command, args)
	}
	if !slices.Contains(fieldErrs(err), field) {
		t.Fatalf("Load(%s, %q) = %v; want an error of --%s", command, args, err, field)
	}
}

func TestTokenSettings(t *testing.T) {
	secret := secretFile(t)
	c := mustLoad(t, "token", []string{"--library", "lib-1,lib-2", "--library", "lib-3", "--publish", "--ttl", "90m", "--secret-file", secret}, nil)
	tc := c.Token
	if !slices.Equal(tc.Libraries, []string{"lib-1", "lib-2", "lib-3"}) || !tc.Publish || tc.All || tc.TTL != 90*time.Minute || tc.SecretFile != secret || tc.Subject != "dev" {
		t.Fatalf("token = %+v", tc)
	}
	c = mustLoad(t, "token", []string{"--all", "--sub", "alice"}, map[string]string{"ARRWCDC_SECRET_FILE": secret})
	if !c.Token.All || c.Token.TTL != time.Hour || c.Token.Subject != "alice" || c.Token.SecretFile != secret {
		t.Fatalf("token = %+v", c.Token)
	}
	c = mustLoad(t, "token", []string{"--config", writeFile(t, "library: [a, b]\nsecret_file: "+secret+"\n")}, nil)
	if !slices.Equal(c.Token.Libraries, []string{"a", "b"}) {
		t.Fatalf("from file: %+v", c.Token)
	}

	short := filepath.Join(t.TempDir(), "short")
	_ = os.WriteFile(short, []byte("abc"), 0o600)
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--secret-file", secret}, "library"},
		{[]string{"--library", "a", "--all", "--secret-file", secret}, "all"},
		{[]string{"--library", "lib.1", "--secret-file", secret}, "library"},
		{[]string{"--library", ">", "--secret-file", secret}, "library"},
		{[]string{"--library", "*", "--secret-file", secret}, "library"},
		{[]string{"--library", "a", "--ttl", "0s", "--secret-file", secret}, "ttl"},
		{[]string{"--library", "a", "--ttl", "-1h", "--secret-file", secret}, "ttl"},
		{[]string{"--library", "a"}, "secret-file"},
		{[]string{"--library", "a", "--secret-file", short}, "secret-file"},
		{[]string{"--library", "a", "--secret-file", filepath.Join(t.TempDir(), "none")}, "secret-file"},
		{[]string{"--library", "a", "--secret-file", secret, "--private-key-file", secret}, "private-key-file"},
	} {
		wantFieldErr(t, "token", tc.args, nil, tc.field)
	}
	if _, err := load(t, "token", []string{"--log-level", "debug"}, nil); !errors.Is(err, config.ErrUnknownSetting) {
		t.Fatalf("token --log-level: %v", err)
	}
}

func TestBrokerSecuritySettings(t *testing.T) {
	certs := testcerts.New(t)
	secret := secretFile(t)
	users := writeFile(t, "users: [{name: app, password: pw, role: publisher}]\n")
	c := mustLoad(t, "serve", []string{"--users-file", users, "--tls-cert", certs.Cert, "--tls-key", certs.Key, "--tls-ca", certs.CA,
		"--cluster-listen", "127.0.0.1:6222", "--cluster-tls-cert", certs.Cert, "--cluster-tls-key", certs.Key, "--cluster-tls-ca", certs.CA,
		"--token-secret-file", secret, "--nats-ws-listen", "127.0.0.1:0"}, nil)
	b := c.Broker
	if b.WebSocketListen != "127.0.0.1:0" {
		t.Fatalf("ws listen %q", b.WebSocketListen)
	}
	if b.UsersFile != users || b.TLS != (broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}) ||
		b.ClusterTLS != (broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}) || b.TokenSecretFile != secret || c.TokenSecretFile != secret {
		t.Fatalf("broker = %+v", b)
	}
	if !b.CalloutEnabled() || !b.AuthEnabled() {
		t.Fatal("callout off")
	}
	c = mustLoad(t, "broker", nil, map[string]string{"ARRWCDC_TOKEN_PUBLIC_KEY_FILE": ""})
	if c.Broker.AuthEnabled() {
		t.Fatal("auth on by default")
	}

	badUsers := writeFile(t, "users: [{name: app, role: god}]\n")
	for _, tc := range []struct {
		cmd   string
		args  []string
		field string
	}{
		{"broker", []string{"--users-file", badUsers}, "users-file"},
		{"broker", []string{"--users-file", filepath.Join(t.TempDir(), "none.yaml")}, "users-file"},
		{"broker", []string{"--tls-cert", certs.Cert}, "tls-key"},
		{"broker", []string{"--nats-ws-listen", "nohostport"}, "nats-ws-listen"},
		{"broker", []string{"--tls-key", certs.Key}, "tls-cert"},
		{"serve", []string{"--cluster-listen", "127.0.0.1:6222", "--cluster-tls-cert", certs.Cert, "--cluster-tls-key", certs.Key}, "cluster-tls-ca"},
		{"serve", []string{"--token-secret-file", filepath.Join(t.TempDir(), "none")}, "token-secret-file"},
		{"broker", []string{"--token-secret-file", secret, "--token-public-key-file", certs.CA}, "token-public-key-file"},
		{"bridge", []string{"--token-secret-file", filepath.Join(t.TempDir(), "none")}, "token-secret-file"},
		{"bridge", []string{"--token-public-key-file", secret}, "token-public-key-file"},
		{"bridge", []string{"--token-secret-file", secret, "--token-public-key-file", certs.CA}, "token-public-key-file"},
	} {
		wantFieldErr(t, tc.cmd, tc.args, nil, tc.field)
	}
	if c := mustLoad(t, "bridge", []string{"--token-secret-file", secret}, nil); c.TokenSecretFile != secret {
		t.Fatal("bridge token secret")
	}
}

func TestNATSClientSettings(t *testing.T) {
	certs := testcerts.New(t)
	for _, tc := range []struct {
		args  []string
		field string
	}{
		{[]string{"--nats-user", "app"}, "nats-password"},
		{[]string{"--nats-password", "pw"}, "nats-user"},
		{[]string{"--nats-user", "app", "--nats-password", "pw", "--nats-token", "t"}, "nats-token"},
		{[]string{"--nats-token", "t", "--nats-creds", certs.CA}, "nats-token"},
		{[]string{"--nats-nkey-seed-file", filepath.Join(t.TempDir(), "none")}, "nats-nkey-seed-file"},
		{[]string{"--nats-tls-ca", filepath.Join(t.TempDir(), "none")}, "nats-tls-ca"},
		{[]string{"--nats-tls-cert", certs.ClientCert}, "nats-tls-cert"},
	} {
		for _, cmd := range []string{"tail", "publish", "bridge", "demo-app", "bench"} {
			wantFieldErr(t, cmd, tc.args, nil, tc.field)
		}
	}
	if opts, err := mustLoad(t, "tail", nil, nil).NATSOptions(); err != nil || len(opts) != 0 {
		t.Fatalf("default options: %d, %v", len(opts), err)
	}
}

// TestNATSOptionsConnect logs in to a broker with users and mutual TLS
// through each kind of credential the settings take.
func TestNATSOptionsConnect(t *testing.T) {
	certs := testcerts.New(t)
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	b := testnats.Broker(t, func(c *broker.Config) {
		c.TLS = broker.TLSConfig{Cert: certs.Cert, Key: certs.Key, CA: certs.CA}
		c.Users = []broker.User{{Name: "app", Password: "pw", Role: broker.RolePublisher}, {Name: "ops", NKey: pub, Role: broker.RoleTap}}
	})
	url := strings.Replace(b.ClientURL(), "nats://", "tls://", 1)
	tlsArgs := []string{"--nats-url", url, "--nats-tls-ca", certs.CA, "--nats-tls-cert", certs.ClientCert, "--nats-tls-key", certs.ClientKey}
	connect := func(args ...string) error {
		c := mustLoad(t, "tail", args, nil)
		opts, err := c.NATSOptions()
		if err != nil {
			return err
		}
		nc, err := nats.Connect(strings.Join(c.NATSURL, ","), append(opts, nats.MaxReconnects(0))...)
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	}
	if err := connect(append(tlsArgs, "--nats-user", "app", "--nats-password", "pw")...); err != nil {
		t.Fatalf("user: %v", err)
	}
	if err := connect(append(tlsArgs, "--nats-nkey-seed-file", seedFile)...); err != nil {
		t.Fatalf("nkey: %v", err)
	}
	if err := connect(append(tlsArgs, "--nats-user", "app", "--nats-password", "wrong")...); err == nil {
		t.Fatal("wrong password connected")
	}
	if err := connect("--nats-url", url, "--nats-user", "app", "--nats-password", "pw"); err == nil {
		t.Fatal("connected without the CA and client certificate")
	}
	// The env twins work as well: what a container would set.
	c := mustLoad(t, "publish", []string{"--nats-url", url}, map[string]string{
		"ARRWCDC_NATS_USER": "app", "ARRWCDC_NATS_PASSWORD": "pw", "ARRWCDC_NATS_TLS_CA": certs.CA,
		"ARRWCDC_NATS_TLS_CERT": certs.ClientCert, "ARRWCDC_NATS_TLS_KEY": certs.ClientKey,
	})
	opts, err := c.NATSOptions()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("env: %v", err)
	}
	nc.Close()
}
