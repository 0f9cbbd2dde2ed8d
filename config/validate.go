package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	pathpkg "path"
	"slices"
	"strconv"
	"strings"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/bench"
	"github.com/arrwdb/arrwcdc/subjects"
)

// FieldError is one bad setting. Callers find it with
// errors.AsType[*config.FieldError]; Err is the cause (it may wrap a
// sentinel of package subjects, such as [subjects.ErrInvalidLibraryID]).
type FieldError struct {
	// Field is the setting's flag name: "nats-listen".
	Field string
	// Value is the bad value as text; a list's bad item.
	Value string
	// Source is where [Load] read a value that does not parse:
	// "--stream-max-age", "ARRWCDC_STREAM_MAX_AGE" or
	// "arrwcdc.yaml:3: stream_max_age". "" for the errors of
	// [Config.Validate], which checks the result of all sources.
	Source string
	// Err is what is wrong with Value.
	Err error
}

// Error names the source (or else the field), then the value unless the
// cause already quotes it, then the cause.
func (e *FieldError) Error() string {
	where := e.Field
	if e.Source != "" {
		where = e.Source
	}
	msg := "invalid"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if q := strconv.Quote(e.Value); e.Value != "" && !strings.Contains(msg, q) {
		return where + " " + q + ": " + msg
	}
	return where + ": " + msg
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem of the settings c.Command takes in one
// error, joined with errors.Join, each a [*FieldError]: a bad prefix, log
// level or format, NATS URL, HTTP listener, the problems of
// [broker.Config.Validate] (serve, broker), a bad library id, type, type
// pattern or subject pattern (tail, publish), more than one of tail's
// --since-seq, --since-time and --all, publish --data that is not a JSON
// object, bench settings out of range (see [BenchConfig]). An unknown
// c.Command gives [ErrUnknownCommand].
func (c Config) Validate() error {
	if !knownCommand(c.Command) {
		return fmt.Errorf("%w %q", ErrUnknownCommand, c.Command)
	}
	var errs []error
	check := func(field, value string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Value: value, Err: err})
		}
	}
	takes := func(name string) bool {
		return slices.ContainsFunc(settings, func(s setting) bool { return s.name == name && s.takes(c.Command) })
	}

	if takes("prefix") {
		check("prefix", c.Prefix, subjects.ValidatePrefix(c.Prefix))
	}
	if takes("log-level") {
		check("log-level", c.LogLevel, oneOf(c.LogLevel, "debug", "info", "warn", "error"))
	}
	if takes("log-format") {
		check("log-format", c.LogFormat, oneOf(c.LogFormat, "console", "json"))
	}
	if takes("nats-url") {
		if len(c.NATSURL) == 0 && c.Command != "bench" { // bench: empty means embedded
			check("nats-url", "", errors.New("want at least one nats://host:port"))
		}
		for _, u := range c.NATSURL {
			check("nats-url", u, validNATSURL(u))
		}
	}
	if takes("http-listen") {
		check("http-listen", c.HTTPListen, validListen(c.HTTPListen))
	}
	if takes("nats-listen") {
		errs = append(errs, c.brokerErrors()...) // the token key files too
	} else if takes("token-secret-file") {
		errs = append(errs, tokenKeyErrors(c.TokenSecretFile, c.TokenPublicKeyFile)...)
	}
	if takes("nats-user") {
		errs = append(errs, c.natsClientErrors()...)
	}
	if takes("allowed-origins") {
		for _, o := range c.Bridge.AllowedOrigins {
			if _, err := pathpkg.Match(o, ""); err != nil || o == "" {
				check("allowed-origins", o, errors.New("want an origin pattern such as https://*.example.com"))
			}
		}
		if c.Bridge.ClientQueue < 0 {
			check("client-queue", strconv.Itoa(c.Bridge.ClientQueue), errors.New("want 0 (no frame bound, the default) or more frames"))
		}
		if c.Bridge.ClientQueueBytes < 0 && c.Bridge.ClientQueue == 0 {
			check("client-queue-bytes", strconv.FormatInt(c.Bridge.ClientQueueBytes, 10), errors.New("no byte bound needs a positive --client-queue"))
		}
		if c.Bridge.MaxPublishBytes < 0 {
			check("max-publish-bytes", strconv.FormatInt(c.Bridge.MaxPublishBytes, 10), errors.New("want 0 (the default) or more bytes"))
		}
	}

	switch c.Command {
	case "tail":
		t := c.Tail
		if t.LibraryID != "" {
			check("library", t.LibraryID, subjects.ValidateLibraryID(t.LibraryID))
		}
		for _, typ := range t.Types {
			check("type", typ, subjects.ValidateTypePattern(typ))
		}
		if t.Subject != "" {
			check("subject", t.Subject, subjects.ValidatePattern(c.Prefix, t.Subject))
			if t.LibraryID != "" || len(t.Types) > 0 {
				check("subject", t.Subject, errors.New("cannot be combined with --library or --type"))
			}
		}
		// One start position: the first given (in this order) is kept,
		// each other one is an error naming both.
		var first string
		for _, start := range []struct {
			name  string
			set   bool
			value string
		}{
			{"since-seq", t.SinceSeq > 0, c.valueOf("since-seq")},
			{"since-time", !t.SinceTime.IsZero(), c.valueOf("since-time")},
			{"all", t.All, ""},
		} {
			switch {
			case !start.set:
			case first == "":
				first = start.name
			default:
				check(start.name, start.value, fmt.Errorf("cannot be combined with --%s: give one of --since-seq, --since-time and --all", first))
			}
		}
	case "publish":
		p := c.Publish
		if p.Type != "" || p.LibraryID != "" {
			check("library", p.LibraryID, subjects.ValidateLibraryID(p.LibraryID))
		}
		if p.Type != "" {
			check("type", p.Type, subjects.ValidateType(p.Type))
		}
		if p.Data != "" {
			check("data", p.Data, jsonObject(p.Data))
		}
	case "demo-app":
		d := c.DemoApp
		if d.DB == "" {
			check("db", d.DB, errors.New("want a file path"))
		}
		if !(d.SearchRate >= 0 && d.SearchRate <= 1) {
			check("search-events", strconv.FormatFloat(d.SearchRate, 'g', -1, 64), errors.New("want a rate from 0 to 1"))
		}
	case "bench":
		errs = append(errs, c.benchErrors()...)
	case "token":
		errs = append(errs, c.tokenErrors()...)
	case "healthcheck":
		if u, err := url.Parse(c.Healthcheck.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			check("url", c.Healthcheck.URL, errors.New("want an http:// or https:// URL"))
		}
	}
	return errors.Join(errs...)
}

// brokerErrors returns the problems of broker.Config.Validate as
// FieldErrors. Each of its errors reads "<yaml field>: <value>: <problem>"
// (the value is sometimes quoted, sometimes absent); "stream.max_age"
// becomes the field stream-max-age, and Value is the setting as its flag
// shows it, or the bad item of a list. Prefix is left out: Validate checks
// it.
func (c Config) brokerErrors() []error {
	b := c.Broker
	b.Prefix = c.Prefix
	err := b.Validate()
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var out []error
	for _, e := range list {
		key, rest, ok := strings.Cut(e.Error(), ": ")
		if !ok {
			out = append(out, &FieldError{Field: "broker", Err: e})
			continue
		}
		field := strings.NewReplacer(".", "-", "_", "-").Replace(key)
		if field == "prefix" {
			continue
		}
		current, isSetting := c.currentValue(field)
		value := current
		if q, err := strconv.QuotedPrefix(rest); err == nil && strings.HasPrefix(rest[len(q):], ": ") {
			value, _ = strconv.Unquote(q) // a list's bad item
			rest = rest[len(q)+2:]
		} else if token, after, ok := strings.Cut(rest, ": "); ok && !strings.ContainsAny(token, " \t") {
			if !isSetting {
				value = token
			}
			rest = after // the value as broker formats it: "-1h0m0s"
		}
		if field == "stream-duplicates" && c.Broker.Stream.Duplicates == 0 {
			// Not a setting: the default dedup window is longer than
			// --stream-max-age, or the negative max age is reported already.
			if c.Broker.Stream.MaxAge < 0 {
				continue
			}
			field, value = "stream-max-age", c.valueOf("stream-max-age")
			rest = "want at least the " + formatDuration(broker.DefaultDuplicates) + " dedup window"
		}
		out = append(out, &FieldError{Field: field, Value: value, Err: &causeError{msg: rest, err: e}})
	}
	return out
}

// currentValue returns the text of c's setting name, as its flag shows it.
func (c Config) currentValue(name string) (string, bool) {
	for i := range settings {
		s := &settings[i]
		if s.name == name && s.takes(c.Command) {
			return s.bind(&c).String(), true
		}
	}
	return "", false
}

func (c Config) valueOf(name string) string {
	v, _ := c.currentValue(name)
	return v
}

// causeError is a message of its own over the error it came from.
type causeError struct {
	msg string
	err error
}

func (e *causeError) Error() string { return e.msg }
func (e *causeError) Unwrap() error { return e.err }

func oneOf(v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return fmt.Errorf("want %s or %s", strings.Join(allowed[:len(allowed)-1], ", "), allowed[len(allowed)-1])
}

// validListen accepts host:port with a port from 0 to 65535; the host may
// be empty (all interfaces).
func validListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("want host:port with a port from 0 to 65535")
	}
	return nil
}

// validNATSURL accepts nats://, tls://, ws:// and wss:// URLs with a host.
func validNATSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme) {
		return errors.New("want nats://host:port (or tls://, ws://, wss://)")
	}
	return nil
}

func jsonObject(s string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return errors.New("want a JSON object such as {\"title\":\"x\"}")
	}
	return nil
}

// benchErrors checks the bench settings against their limits.
func (c Config) benchErrors() []error {
	b := c.Bench
	var errs []error
	check := func(field string, bad bool, msg string) {
		if bad {
			errs = append(errs, &FieldError{Field: field, Value: c.valueOf(field), Err: errors.New(msg)})
		}
	}
	if err := oneOf(b.Scenario, bench.Scenarios...); err != nil {
		errs = append(errs, &FieldError{Field: "scenario", Value: b.Scenario, Err: err})
	}
	if err := oneOf(b.Mode, "sync", "async", "core"); err != nil {
		errs = append(errs, &FieldError{Field: "mode", Value: b.Mode, Err: err})
	}
	check("mode", b.Mode == "core" && b.Scenario != "publish" && b.Scenario != "e2e",
		"core publishes bypass the stream: only with --scenario publish or e2e")
	check("events", b.Events < 0, "want 0 (the scenario's default) or more")
	check("size", b.Size < 1 || b.Size > 1<<20, "want 1 to 1048576 bytes")
	check("rate", !(b.Rate >= 0), "want 0 (as fast as possible) or more events/s")
	check("clients", b.Clients < 1 || b.Clients > 100_000, "want 1 to 100000")
	check("libraries", b.Libraries < 1 || b.Libraries > 100_000, "want 1 to 100000")
	check("duration", b.Duration < 0, "want 0 (no limit) or more")
	check("client-queue", b.ClientQueue < 0, "want 0 (the bridge's default) or more frames")
	check("nats-url", (b.Scenario == "ws-peer" || b.Scenario == "conns-peer") && len(c.NATSURL) > 0,
		b.Scenario+" runs its own broker with a websocket listener: leave --nats-url empty")
	return errs
}

// tokenKeyErrors checks the key files of access tokens: at most one, and
// it holds a usable key.
func tokenKeyErrors(secretFile, publicKeyFile string) []error {
	if secretFile != "" && publicKeyFile != "" {
		return []error{&FieldError{Field: "token-public-key-file", Value: publicKeyFile, Err: errors.New("give it or --token-secret-file, not both")}}
	}
	if _, err := auth.LoadVerifier(secretFile, publicKeyFile); err != nil {
		field, value := "token-secret-file", secretFile
		if value == "" {
			field, value = "token-public-key-file", publicKeyFile
		}
		return []error{&FieldError{Field: field, Value: value, Err: err}}
	}
	return nil
}

// natsClientErrors checks the NATS client's credentials and TLS files:
// one way of logging in, user and password together, certificate and
// key together, files that exist.
func (c Config) natsClientErrors() []error {
	n := c.NATSClient
	var errs []error
	check := func(field, value string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Value: value, Err: err})
		}
	}
	var ways []string
	if n.User != "" || n.Password != "" {
		ways = append(ways, "--nats-user")
		if n.User == "" {
			check("nats-user", "", errors.New("--nats-password needs a user name"))
		}
		if n.Password == "" {
			check("nats-password", "", errors.New("--nats-user needs a password"))
		}
	}
	for _, w := range []struct{ name, value string }{{"nats-nkey-seed-file", n.NKeySeedFile}, {"nats-creds", n.CredsFile}, {"nats-token", n.Token}} {
		if w.value != "" {
			ways = append(ways, "--"+w.name)
		}
	}
	if len(ways) > 1 {
		check(strings.TrimPrefix(ways[1], "--"), "", fmt.Errorf("cannot be combined with %s: give one way of logging in", ways[0]))
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		check("nats-tls-cert", n.TLSCert, errors.New("give --nats-tls-cert and --nats-tls-key together"))
	}
	for _, f := range []struct{ name, path string }{
		{"nats-nkey-seed-file", n.NKeySeedFile}, {"nats-creds", n.CredsFile},
		{"nats-tls-ca", n.TLSCA}, {"nats-tls-cert", n.TLSCert}, {"nats-tls-key", n.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			check(f.name, f.path, errors.Unwrap(err))
		}
	}
	return errs
}

// tokenErrors checks the token command: --library ids or --all, a
// positive --ttl, one signing key that loads.
func (c Config) tokenErrors() []error {
	t := c.Token
	var errs []error
	check := func(field, value string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Value: value, Err: err})
		}
	}
	switch {
	case len(t.Libraries) == 0 && !t.All:
		check("library", "", errors.New("give the library ids the token reads (--library ID, repeatable) or --all"))
	case len(t.Libraries) > 0 && t.All:
		check("all", "", errors.New("cannot be combined with --library"))
	}
	for _, id := range t.Libraries {
		check("library", id, subjects.ValidateLibraryID(id))
	}
	if len(t.Libraries) > auth.MaxReadEntries {
		check("library", "", fmt.Errorf("%d libraries: at most %d", len(t.Libraries), auth.MaxReadEntries))
	}
	if t.TTL <= 0 {
		check("ttl", c.valueOf("ttl"), errors.New("want a positive duration such as 1h"))
	}
	switch {
	case t.SecretFile == "" && t.PrivateKeyFile == "":
		check("secret-file", "", errors.New("give the HS256 secret file (or --private-key-file for RS256)"))
	case t.SecretFile != "" && t.PrivateKeyFile != "":
		check("private-key-file", t.PrivateKeyFile, errors.New("cannot be combined with --secret-file"))
	default:
		if _, err := auth.LoadSigner(t.SecretFile, t.PrivateKeyFile); err != nil {
			field, value := "secret-file", t.SecretFile
			if value == "" {
				field, value = "private-key-file", t.PrivateKeyFile
			}
			check(field, value, err)
		}
	}
	return errs
}
