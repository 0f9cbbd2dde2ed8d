package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/internal/bench"
)

// Errors of [Load] that callers may test with errors.Is.
var (
	// ErrUnknownCommand: the command is not one of [Commands].
	ErrUnknownCommand = errors.New("unknown command")
	// ErrUnknownSetting: a flag or YAML key that is not a setting of the
	// command (it may be one of another command).
	ErrUnknownSetting = errors.New("unknown setting")
)

// Config holds the settings of one subcommand. Fields of settings the
// command does not take keep their zero value; the flag, env var and YAML
// key of each field are in its comment.
type Config struct {
	// Command is the subcommand the settings were loaded for: "serve",
	// "tail"… (one of [Commands]).
	Command string
	// File is the YAML file the settings were read from: --config,
	// ARRWCDC_CONFIG. "" means none.
	File string
	// Prefix is the subject prefix: --prefix, ARRWCDC_PREFIX, prefix.
	// Default "events". All commands but version.
	Prefix string
	// LogLevel is debug, info, warn or error: --log-level,
	// ARRWCDC_LOG_LEVEL, log_level. Default "info". All but version.
	LogLevel string
	// LogFormat is console or json: --log-format, ARRWCDC_LOG_FORMAT,
	// log_format. Default "console". All but version.
	LogFormat string
	// NATSURL lists the NATS servers to connect to: --nats-url (comma-
	// separated, repeatable), ARRWCDC_NATS_URL, nats_url (a string or a
	// sequence). Default [nats://127.0.0.1:4222]. bridge, demo-app, tail,
	// publish, bench; nil for the others.
	NATSURL []string
	// HTTPListen is the HTTP listener, host:port (port 0 picks a free one):
	// --http-listen, ARRWCDC_HTTP_LISTEN, http_listen. Default
	// 127.0.0.1:8000 for serve and bridge, 127.0.0.1:8080 for demo-app;
	// "" for the others.
	HTTPListen string
	// Broker configures the embedded NATS node of serve and broker through
	// --nats-listen (default 127.0.0.1:4222), --cluster-listen,
	// --cluster-name, --routes (comma-separated, repeatable; a sequence in
	// YAML), --monitor-listen, --data-dir (default ./data),
	// --server-name, --stream-replicas (0 means min(3, cluster size)),
	// --stream-max-age (default 168h), --stream-max-bytes (0 means no
	// cap), --nats-ws-listen, and security: --users-file, --tls-cert,
	// --tls-key, --tls-ca, --cluster-tls-cert, --cluster-tls-key,
	// --cluster-tls-ca (see docs/security.md); the other fields are zero,
	// meaning broker's defaults. After Load, Broker.Prefix is Prefix,
	// whatever the command, and the token key files are those of
	// TokenSecretFile and TokenPublicKeyFile.
	Broker broker.Config
	// Bridge configures the bridge of serve and bridge through
	// --allowed-origins (comma-separated origin patterns; empty means any
	// origin), --client-queue-bytes (bytes of frames per client before it
	// is closed as slow; 0 means 4 MiB, negative no byte bound),
	// --client-queue (an optional bound in frames as well; 0 means none),
	// --max-connections (0 means 50000, negative no
	// limit), --max-conns-per-address (0 means 256, negative no limit) and
	// --max-publish-bytes (0 means 4 MiB). After Load, Bridge.HTTPListen
	// and Bridge.Prefix are HTTPListen and Prefix; the token verifier is
	// main's to set.
	Bridge bridge.Config
	// Tail holds the filters of tail; zero for the other commands.
	Tail TailConfig
	// Publish holds the event of publish; zero for the other commands.
	Publish PublishConfig
	// DemoApp holds the settings of demo-app; zero for the other commands.
	DemoApp DemoAppConfig
	// Healthcheck holds the settings of healthcheck.
	Healthcheck HealthcheckConfig
	// Bench holds the load of bench; zero for the other commands.
	Bench BenchConfig

	// TokenSecretFile holds the HS256 secret of access tokens:
	// --token-secret-file. TokenPublicKeyFile holds the RS256 public key
	// (PEM): --token-public-key-file. At most one; setting one turns token
	// auth on. serve, broker, bridge; after Load, Broker.TokenSecretFile
	// and Broker.TokenPublicKeyFile are these for serve and broker.
	TokenSecretFile    string
	TokenPublicKeyFile string
	// NATSClient holds the credentials and TLS settings of the NATS client
	// of bridge, demo-app, tail, publish and bench ([Config.NATSOptions]).
	NATSClient NATSClientConfig
	// Token holds the settings of the token command.
	Token TokenConfig
}

// NATSClientConfig holds how a NATS client logs in and trusts servers.
// The zero value means anonymous, and TLS only for tls:// URLs with the
// system's CAs.
type NATSClientConfig struct {
	// User and Password log in as a user of the users file: --nats-user,
	// --nats-password.
	User, Password string
	// NKeySeedFile holds the seed of an nkey user: --nats-nkey-seed-file.
	NKeySeedFile string
	// CredsFile is a NATS credentials file (operator mode): --nats-creds.
	CredsFile string
	// Token is the auth token: --nats-token. With the broker's auth
	// callout on, an access token of `arrwcdc token`.
	Token string
	// TLSCA is the PEM file of the CAs the servers' certificates are
	// checked against: --nats-tls-ca. Setting it turns TLS on.
	TLSCA string
	// TLSCert and TLSKey are the client certificate and key for servers
	// that require one: --nats-tls-cert, --nats-tls-key.
	TLSCert, TLSKey string
}

// TokenConfig holds the settings of the token command.
type TokenConfig struct {
	// Libraries the token reads: --library, comma-separated and repeatable.
	Libraries []string
	// All makes the token read every library ("*"): --all. Not with
	// Libraries.
	All bool
	// Publish lets the token publish: --publish.
	Publish bool
	// TTL is the token's lifetime: --ttl. Default 1h.
	TTL time.Duration
	// Subject is the token's sub: --sub. Default "dev".
	Subject string
	// SecretFile holds the HS256 secret: --secret-file. PrivateKeyFile
	// holds an RS256 private key (PEM): --private-key-file. Exactly one.
	SecretFile, PrivateKeyFile string
}

// BenchConfig holds the settings of the bench command: a run of package
// internal/bench (its flags, in the settings table, fill the run's own
// fields), and how to print its result. For bench, NATSURL defaults to
// empty, which means an embedded broker in a temporary directory; the
// command adds the connection, the prefix and the progress bar.
type BenchConfig struct {
	bench.Config
	// JSON prints the result as one JSON object: --json. false means a
	// table.
	JSON bool
}

// DemoAppConfig holds the settings of the demo-app command.
type DemoAppConfig struct {
	// DB is the SQLite file of the libraries and the outbox: --db.
	// Default ./demoapp.db.
	DB string
	// Source names the instance in its events: --source. "" means the
	// host name.
	Source string
	// SearchRate is the share of searches that publish search.performed:
	// --search-events, 0 to 1. Default 1; 0 turns search events off.
	SearchRate float64
}

// HealthcheckConfig holds the settings of the healthcheck command.
type HealthcheckConfig struct {
	// URL is fetched with GET; a 2xx answer within 2 s means healthy: --url.
	URL string
}

// TailConfig holds the settings of the tail command.
type TailConfig struct {
	// LibraryID keeps the events of one library: --library. "" means all.
	LibraryID string
	// Types keeps events of these types or type patterns (document.added,
	// document.*, *.deleted): --type, comma-separated and repeatable.
	// Empty means all types.
	Types []string
	// Subject is a raw NATS subject pattern used instead of LibraryID and
	// Types: --subject. "" means none.
	Subject string
	// JSON prints each event as one JSON line: --json. false means the
	// human-readable form.
	JSON bool
	// SinceSeq replays the stored events from this stream sequence (1 or
	// more) before the live ones: --since-seq. 0 means no replay.
	SinceSeq uint64
	// SinceTime replays the events stored at or after this time before
	// the live ones: --since-time, RFC 3339 (a time without a zone is
	// UTC). The zero time means no replay.
	SinceTime time.Time
	// All replays every stored event before the live ones: --all.
	All bool
}

// Replay reports whether tail replays stored events: one of SinceSeq,
// SinceTime and All is set.
func (t TailConfig) Replay() bool {
	return t.SinceSeq > 0 || !t.SinceTime.IsZero() || t.All
}

// PublishConfig holds the settings of the publish command.
type PublishConfig struct {
	// LibraryID is the event's library: --library. Required with Type.
	LibraryID string
	// Type is the event type, such as document.added: --type. "" means the
	// event is read as JSON from stdin (by main).
	Type string
	// Data is the event's data, a JSON object: --data. "" means {}.
	Data string
	// Source is the event's source: --source. "" means the publisher's
	// default.
	Source string
	// ID is the event id, also its dedup key: --id. "" means a new one.
	ID string
}

// Loader loads a [Config]. The zero value reads no environment and prints
// --help to os.Stdout.
type Loader struct {
	// Getenv looks up environment variables; nil means none are set. An
	// empty value counts as unset.
	Getenv func(string) string
	// Output receives the usage on --help. nil means os.Stdout.
	Output io.Writer
}

// Load is [Loader.Load] with the given getenv (os.Getenv in main) and the
// usage printed to os.Stdout.
func Load(command string, args []string, getenv func(string) string) (Config, error) {
	return Loader{Getenv: getenv}.Load(command, args)
}

// Load returns the settings of command, given the arguments that follow it:
// the defaults, then the YAML file of --config (or ARRWCDC_CONFIG), then
// the environment, then the flags in args. It then returns the Config with
// [Config.Validate]'s error, if any.
//
// Other errors come with a zero Config: [ErrUnknownCommand];
// [flag.ErrHelp] after printing the usage for -h or --help;
// [ErrUnknownSetting] for a flag or YAML key the command does not take;
// a [*FieldError] naming the flag, env var or file:line: key for a value
// that does not parse (a bad duration, say); errors reading the file; and
// an error for a positional argument. Problems of the file and of the
// environment are reported together.
func (l Loader) Load(command string, args []string) (Config, error) {
	getenv := l.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	out := l.Output
	if out == nil {
		out = os.Stdout
	}

	// A first pass over the flags answers --help and reports bad flags
	// before anything is read, and finds --config.
	first, err := newFlagSet(command)
	if err != nil {
		return Config{}, err
	}
	if err := first.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			first.usage(out)
		}
		return Config{}, err
	}
	var path string
	if first.lookup("config") != nil {
		path = getenv(envName("config"))
		first.fs.Visit(func(f *flag.Flag) {
			if f.Name == "config" {
				path = first.cfg.File // --config= also turns ARRWCDC_CONFIG off
			}
		})
	}

	f, _ := newFlagSet(command)
	var errs []error
	if path != "" {
		errs = append(errs, f.applyFile(path))
	}
	errs = append(errs, f.applyEnv(getenv))
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	f.newSource()
	if err := f.parse(args); err != nil {
		return Config{}, err // not reached: the first pass parsed the same flags
	}
	c := *f.cfg
	c.File = path
	c.Broker.Prefix = c.Prefix
	c.Bridge.Prefix, c.Bridge.HTTPListen = c.Prefix, c.HTTPListen
	c.Broker.TokenSecretFile, c.Broker.TokenPublicKeyFile = c.TokenSecretFile, c.TokenPublicKeyFile
	return c, c.Validate()
}

// flagSet is a FlagSet for one command whose flags fill cfg.
type flagSet struct {
	command  string
	cfg      *Config
	fs       *flag.FlagSet
	settings []*setting
	values   map[string]*boundValue
	failed   *FieldError // the flag whose Set failed during parse
}

// newFlagSet returns the flags of command bound to a Config holding the
// defaults.
func newFlagSet(command string) (*flagSet, error) {
	if !knownCommand(command) {
		return nil, fmt.Errorf("%w %q", ErrUnknownCommand, command)
	}
	f := &flagSet{
		command:  command,
		cfg:      &Config{Command: command},
		fs:       flag.NewFlagSet(command, flag.ContinueOnError),
		settings: commandSettings(command),
		values:   map[string]*boundValue{},
	}
	f.fs.SetOutput(io.Discard) // Load prints the usage and returns the errors
	f.fs.Usage = func() {}
	for _, s := range f.settings {
		v := &boundValue{Value: s.bind(f.cfg), name: s.name, f: f, fresh: true}
		if s.def != "" {
			if err := v.Set(s.def); err != nil {
				panic(fmt.Sprintf("config: default of --%s: %v", s.name, err))
			}
		}
		f.values[s.name] = v
		f.fs.Var(v, s.name, s.usage) // panics if a command has a name twice
	}
	f.newSource()
	return f, nil
}

// lookup returns the command's setting name, or nil.
func (f *flagSet) lookup(name string) *setting {
	for _, s := range f.settings {
		if s.name == name {
			return s
		}
	}
	return nil
}

// newSource makes the next Set of each list replace it, not append to it.
func (f *flagSet) newSource() {
	for _, v := range f.values {
		v.fresh = true
	}
}

// parse parses the flags in args.
func (f *flagSet) parse(args []string) error {
	f.failed = nil
	err := f.fs.Parse(args)
	switch {
	case err == nil:
		if f.fs.NArg() > 0 {
			return fmt.Errorf("%s: unexpected argument %q", f.command, f.fs.Arg(0))
		}
		return nil
	case errors.Is(err, flag.ErrHelp):
		return flag.ErrHelp
	case f.failed != nil:
		return f.failed
	}
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
		return f.unknown("--"+name, name)
	}
	return fmt.Errorf("%s: %w", f.command, err)
}

// unknown reports a setting the command does not take, naming the commands
// that do.
func (f *flagSet) unknown(where, name string) error {
	hint := ""
	if cmds := takers(name); len(cmds) > 0 {
		hint = " (it belongs to " + strings.Join(cmds, ", ") + ")"
	}
	return fmt.Errorf("%s: %w of %s%s", where, ErrUnknownSetting, f.command, hint)
}

// set gives value to the setting name, as read from source.
func (f *flagSet) set(name, value, source string) error {
	if err := f.values[name].Set(value); err != nil {
		return &FieldError{Field: name, Value: value, Source: source, Err: err}
	}
	return nil
}

// applyEnv sets every setting of the command whose env twin is not empty.
func (f *flagSet) applyEnv(getenv func(string) string) error {
	f.newSource()
	var errs []error
	for _, s := range f.settings {
		env := envName(s.name)
		if v := getenv(env); v != "" {
			errs = append(errs, f.set(s.name, v, env))
		}
	}
	return errors.Join(errs...)
}

// boundValue is a setting's flag.Value as registered: it empties lists at
// the first Set of each source and records the failure of a flag's Set.
type boundValue struct {
	flag.Value
	name  string
	f     *flagSet
	fresh bool
}

func (v *boundValue) Set(s string) error {
	if l, ok := v.Value.(*listValue); ok && v.fresh {
		*l = nil
	}
	v.fresh = false
	if err := v.Value.Set(s); err != nil {
		v.f.failed = &FieldError{Field: v.name, Value: s, Source: "--" + v.name, Err: err}
		return err
	}
	return nil
}

func (v *boundValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
