package config_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/subjects"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a map-backed getenv.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// writeFile writes a YAML file in a temporary directory and returns its path.
func writeFile(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "arrwcdc.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, command string, args []string, kv map[string]string) (config.Config, error) {
	t.Helper()
	var out bytes.Buffer
	return config.Loader{Getenv: env(kv), Output: &out}.Load(command, args)
}

func mustLoad(t *testing.T, command string, args []string, kv map[string]string) config.Config {
	t.Helper()
	c, err := load(t, command, args, kv)
	if err != nil {
		t.Fatalf("Load(%s, %q): %v", command, args, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	natsURL := []string{"nats://127.0.0.1:4222"}
	tests := []struct {
		command    string
		natsURL    []string
		httpListen string
		broker     bool
	}{
		{"serve", nil, "127.0.0.1:8000", true},
		{"broker", nil, "", true},
		{"bridge", natsURL, "127.0.0.1:8000", false},
		{"demo-app", natsURL, "127.0.0.1:8080", false},
		{"tail", natsURL, "", false},
		{"publish", natsURL, "", false},
		{"bench", nil, "", false}, // empty: an embedded broker
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			c := mustLoad(t, tt.command, nil, nil)
			if c.Command != tt.command || c.File != "" {
				t.Errorf("Command, File = %q, %q", c.Command, c.File)
			}
			if c.Prefix != "events" || c.LogLevel != "info" || c.LogFormat != "console" {
				t.Errorf("Prefix, LogLevel, LogFormat = %q, %q, %q", c.Prefix, c.LogLevel, c.LogFormat)
			}
			if !reflect.DeepEqual(c.NATSURL, tt.natsURL) {
				t.Errorf("NATSURL = %q, want %q", c.NATSURL, tt.natsURL)
			}
			if c.HTTPListen != tt.httpListen {
				t.Errorf("HTTPListen = %q, want %q", c.HTTPListen, tt.httpListen)
			}
			b := c.Broker
			if b.Prefix != "events" {
				t.Errorf("Broker.Prefix = %q", b.Prefix)
			}
			if tt.broker {
				if b.NATSListen != "127.0.0.1:4222" || b.DataDir != "./data" || b.Stream.MaxAge != 168*time.Hour {
					t.Errorf("Broker = %+v", b)
				}
				if b.ClusterListen != "" || b.Routes != nil || b.Stream.Replicas != 0 || b.Stream.MaxBytes != 0 {
					t.Errorf("Broker = %+v", b)
				}
				if err := b.Validate(); err != nil {
					t.Errorf("Broker.Validate: %v", err)
				}
			} else {
				b.Prefix = ""
				if !reflect.DeepEqual(b, broker.Config{}) {
					t.Errorf("Broker = %+v, want zero but Prefix", b)
				}
			}
		})
	}

	t.Run("version", func(t *testing.T) {
		c := mustLoad(t, "version", nil, map[string]string{"ARRWCDC_CONFIG": "/nonexistent.yaml", "ARRWCDC_PREFIX": "x"})
		if !reflect.DeepEqual(c, config.Config{Command: "version"}) {
			t.Errorf("version = %+v, want only Command", c)
		}
	})
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "nats_listen: 127.0.0.1:4001\nstream_max_age: 1h\nlog_level: warn\n")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		listen string
		maxAge time.Duration
	}{
		{"defaults", nil, nil, "127.0.0.1:4222", 168 * time.Hour},
		{"file", []string{"--config", file}, nil, "127.0.0.1:4001", time.Hour},
		{"file from env", nil, map[string]string{"ARRWCDC_CONFIG": file}, "127.0.0.1:4001", time.Hour},
		{"env over file", []string{"--config=" + file}, map[string]string{"ARRWCDC_NATS_LISTEN": "127.0.0.1:4002", "ARRWCDC_STREAM_MAX_AGE": "2h"}, "127.0.0.1:4002", 2 * time.Hour},
		{"flag over env and file", []string{"-config", file, "--nats-listen", "127.0.0.1:4003", "--stream-max-age=3h"},
			map[string]string{"ARRWCDC_NATS_LISTEN": "127.0.0.1:4002", "ARRWCDC_STREAM_MAX_AGE": "2h"}, "127.0.0.1:4003", 3 * time.Hour},
		{"flag over defaults", []string{"--nats-listen", "127.0.0.1:0"}, nil, "127.0.0.1:0", 168 * time.Hour},
		{"empty env is unset", []string{"--config", file}, map[string]string{"ARRWCDC_NATS_LISTEN": ""}, "127.0.0.1:4001", time.Hour},
		{"--config= turns ARRWCDC_CONFIG off", []string{"--config="}, map[string]string{"ARRWCDC_CONFIG": file}, "127.0.0.1:4222", 168 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, "serve", tt.args, tt.env)
			if c.Broker.NATSListen != tt.listen || c.Broker.Stream.MaxAge != tt.maxAge {
				t.Errorf("NATSListen, MaxAge = %q, %v, want %q, %v", c.Broker.NATSListen, c.Broker.Stream.MaxAge, tt.listen, tt.maxAge)
			}
		})
	}

	c := mustLoad(t, "serve", []string{"--config", file}, nil)
	if c.File != file || c.LogLevel != "warn" {
		t.Errorf("File, LogLevel = %q, %q", c.File, c.LogLevel)
	}
}

func TestLists(t *testing.T) {
	seq := writeFile(t, "cluster_listen: 127.0.0.1:6222\nroutes: [nats-route://a:6222, nats-route://b:6222]\n")
	block := writeFile(t, "cluster_listen: 127.0.0.1:6222\nroutes:\n  - nats-route://a:6222\n  - nats-route://b:6222\n")
	comma := writeFile(t, "cluster_listen: 127.0.0.1:6222\nroutes: nats-route://a:6222, nats-route://b:6222\n")
	empty := writeFile(t, "cluster_listen: 127.0.0.1:6222\nroutes: []\n")
	ab := []string{"nats-route://a:6222", "nats-route://b:6222"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"YAML flow sequence", []string{"--config", seq}, nil, ab},
		{"YAML block sequence", []string{"--config", block}, nil, ab},
		{"YAML comma string", []string{"--config", comma}, nil, ab},
		{"YAML empty sequence", []string{"--config", empty}, nil, nil},
		{"env comma string", []string{"--cluster-listen", "127.0.0.1:6222"}, map[string]string{"ARRWCDC_ROUTES": "nats-route://a:6222,nats-route://b:6222"}, ab},
		{"flag comma string", []string{"--cluster-listen", "127.0.0.1:6222", "--routes", "nats-route://a:6222,,nats-route://b:6222"}, nil, ab},
		{"flag repeated", []string{"--cluster-listen", "127.0.0.1:6222", "--routes", "nats-route://a:6222", "--routes", "nats-route://b:6222"}, nil, ab},
		{"flag replaces file", []string{"--config", seq, "--routes", "nats-route://c:6222"}, nil, []string{"nats-route://c:6222"}},
		{"env replaces file", []string{"--config", seq}, map[string]string{"ARRWCDC_ROUTES": "nats-route://c:6222"}, []string{"nats-route://c:6222"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, "broker", tt.args, tt.env)
			if !reflect.DeepEqual(c.Broker.Routes, tt.want) {
				t.Errorf("Routes = %q, want %q", c.Broker.Routes, tt.want)
			}
		})
	}

	t.Run("tail types and nats urls", func(t *testing.T) {
		c := mustLoad(t, "tail", []string{"--type", "document.*", "--type", "collection.added,*.deleted", "--nats-url", "nats://a:4222,nats://b:4222"}, nil)
		if want := []string{"document.*", "collection.added", "*.deleted"}; !reflect.DeepEqual(c.Tail.Types, want) {
			t.Errorf("Types = %q, want %q", c.Tail.Types, want)
		}
		if want := []string{"nats://a:4222", "nats://b:4222"}; !reflect.DeepEqual(c.NATSURL, want) {
			t.Errorf("NATSURL = %q, want %q", c.NATSURL, want)
		}
	})
}

func TestCommandSettings(t *testing.T) {
	file := writeFile(t, "prefix: prod.events\nlibrary: lib-1\ntype: [document.*]\njson: true\n")
	c := mustLoad(t, "tail", []string{"--config", file, "--subject", ""}, map[string]string{"ARRWCDC_LOG_FORMAT": "json"})
	want := config.TailConfig{LibraryID: "lib-1", Types: []string{"document.*"}, JSON: true}
	if !reflect.DeepEqual(c.Tail, want) || c.Prefix != "prod.events" || c.Broker.Prefix != "prod.events" || c.LogFormat != "json" {
		t.Errorf("tail = %+v", c)
	}

	c = mustLoad(t, "tail", []string{"--json=false", "--subject", "events.library.*.document.>"}, map[string]string{"ARRWCDC_JSON": "true"})
	if c.Tail.JSON || c.Tail.Subject != "events.library.*.document.>" {
		t.Errorf("tail = %+v", c.Tail)
	}

	c = mustLoad(t, "publish", []string{"--library", "lib-1", "--type", "document.added", "--data", `{"title":"x"}`, "--source", "cli", "--id", "e-1"}, nil)
	if want := (config.PublishConfig{LibraryID: "lib-1", Type: "document.added", Data: `{"title":"x"}`, Source: "cli", ID: "e-1"}); c.Publish != want {
		t.Errorf("publish = %+v", c.Publish)
	}
	if c = mustLoad(t, "publish", nil, nil); c.Publish != (config.PublishConfig{}) {
		t.Errorf("publish (stdin) = %+v", c.Publish)
	}

	c = mustLoad(t, "broker", []string{"--cluster-listen", "127.0.0.1:6222", "--cluster-name", "c1", "--routes", "nats-route://127.0.0.1:6223",
		"--monitor-listen", "127.0.0.1:8222", "--data-dir", "/var/lib/arrwcdc", "--server-name", "n1", "--stream-replicas", "2", "--stream-max-bytes", "1073741824"}, nil)
	b := c.Broker
	if b.ClusterListen != "127.0.0.1:6222" || b.ClusterName != "c1" || b.MonitorListen != "127.0.0.1:8222" || b.DataDir != "/var/lib/arrwcdc" ||
		b.ServerName != "n1" || b.Stream.Replicas != 2 || b.Stream.MaxBytes != 1<<30 {
		t.Errorf("broker = %+v", b)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		command string
		yaml    string
		is      error
		want    []string // substrings of the error
	}{
		{"unknown key", "serve", "nats_listen: 127.0.0.1:4222\nbogus_key: 1\n", config.ErrUnknownSetting, []string{":2: bogus_key", "unknown setting of serve"}},
		{"key of another command", "tail", "nats_listen: 127.0.0.1:4300\n", config.ErrUnknownSetting, []string{":1: nats_listen", "of tail", "serve, broker"}},
		{"kebab-case key", "serve", "nats-listen: 127.0.0.1:4300\n", config.ErrUnknownSetting, []string{"nats-listen"}},
		{"config key", "serve", "config: other.yaml\n", config.ErrUnknownSetting, []string{":1: config"}},
		{"duplicate key", "serve", "prefix: a\nprefix: b\n", nil, []string{":2: prefix: given twice"}},
		{"sequence for one value", "serve", "nats_listen: [a, b]\n", nil, []string{"nats_listen: want one value"}},
		{"mapping value", "serve", "routes: {a: b}\n", nil, []string{"routes: want a string"}},
		{"bad duration", "serve", "stream_max_age: soon\n", nil, []string{`:1: stream_max_age "soon": want a duration`}},
		{"bad int", "serve", "stream_replicas: three\n", nil, []string{`stream_replicas "three": want an integer`}},
		{"not a mapping", "serve", "- a\n- b\n", nil, []string{"want a mapping"}},
		{"bad YAML", "serve", "a: [\n", nil, []string{"arrwcdc.yaml"}},
		{"every problem", "serve", "bogus: 1\nstream_max_age: soon\nhttp_port: 1\n", config.ErrUnknownSetting, []string{"bogus", "stream_max_age", "http_port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.yaml)
			_, err := load(t, tt.command, []string{"--config", path}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("empty file", func(t *testing.T) {
		mustLoad(t, "serve", []string{"--config", writeFile(t, "# nothing yet\n")}, nil)
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := load(t, "serve", nil, map[string]string{"ARRWCDC_CONFIG": "/nonexistent/arrwcdc.yaml"})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want ErrNotExist", err)
		}
	})
	t.Run("file value is a FieldError", func(t *testing.T) {
		_, err := load(t, "serve", []string{"--config", writeFile(t, "stream_max_age: soon\n")}, nil)
		fe, ok := errors.AsType[*config.FieldError](err)
		if !ok || fe.Field != "stream-max-age" || fe.Value != "soon" || !strings.HasSuffix(fe.Source, ".yaml:1: stream_max_age") {
			t.Errorf("FieldError = %+v (%v)", fe, err)
		}
	})
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    []string
		env     map[string]string
		field   string
		source  string
		want    string
	}{
		{"env bad duration", "serve", nil, map[string]string{"ARRWCDC_STREAM_MAX_AGE": "soon"}, "stream-max-age", "ARRWCDC_STREAM_MAX_AGE", `ARRWCDC_STREAM_MAX_AGE "soon": want a duration`},
		{"env bad bool", "tail", nil, map[string]string{"ARRWCDC_JSON": "maybe"}, "json", "ARRWCDC_JSON", `ARRWCDC_JSON "maybe": want true or false`},
		{"flag bad duration", "broker", []string{"--stream-max-age", "soon"}, nil, "stream-max-age", "--stream-max-age", `--stream-max-age "soon": want a duration`},
		{"flag bad int", "broker", []string{"--stream-max-bytes=1GB"}, nil, "stream-max-bytes", "--stream-max-bytes", `--stream-max-bytes "1GB": want an integer`},
		{"flag bad bool", "tail", []string{"--json=maybe"}, nil, "json", "--json", `--json "maybe"`},
		{"flag beats bad env", "serve", []string{"--stream-max-age", "soon"}, map[string]string{"ARRWCDC_STREAM_MAX_AGE": "1h"}, "stream-max-age", "--stream-max-age", "--stream-max-age"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.command, tt.args, tt.env)
			fe, ok := errors.AsType[*config.FieldError](err)
			if !ok {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if fe.Field != tt.field || fe.Source != tt.source || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FieldError = %+v, %q; want field %q, source %q, text %q", fe, err, tt.field, tt.source, tt.want)
			}
			if c.Command != "" {
				t.Errorf("Config = %+v, want zero on error", c)
			}
		})
	}
}

func TestForeignFlags(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    []string
		is      error
		want    string
	}{
		{"broker flag in tail", "tail", []string{"--nats-listen", "127.0.0.1:4300"}, config.ErrUnknownSetting, "--nats-listen: unknown setting of tail (it belongs to serve, broker)"},
		{"tail flag in serve", "serve", []string{"-json"}, config.ErrUnknownSetting, "(it belongs to tail, bench)"},
		{"nats-url in serve", "serve", []string{"--nats-url=nats://x:4222"}, config.ErrUnknownSetting, "bridge, demo-app, tail, publish, bench"},
		{"no such flag", "bridge", []string{"--bogus"}, config.ErrUnknownSetting, "--bogus: unknown setting of bridge"},
		{"flag in version", "version", []string{"--prefix", "x"}, config.ErrUnknownSetting, "unknown setting of version"},
		{"positional argument", "tail", []string{"--json", "extra"}, nil, `unexpected argument "extra"`},
		{"missing value", "serve", []string{"--nats-listen"}, nil, "flag needs an argument"},
		{"unknown command", "nope", nil, config.ErrUnknownCommand, `unknown command "nope"`},
		{"bad flag before --config", "serve", []string{"--bogus", "--config", "/nonexistent.yaml"}, config.ErrUnknownSetting, "--bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.command, tt.args, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}

	// The env vars of other commands are ignored, not errors.
	c := mustLoad(t, "tail", nil, map[string]string{"ARRWCDC_NATS_LISTEN": "bogus", "ARRWCDC_HTTP_LISTEN": "bogus"})
	if c.Broker.NATSListen != "" || c.HTTPListen != "" {
		t.Errorf("tail read another command's env: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		command string
		args    []string
		want    map[string]string // field -> bad value, one entry per FieldError
		is      []error
	}{
		{"serve", "serve", []string{"--prefix", "a..b", "--log-level", "loud", "--log-format", "xml", "--http-listen", "8000",
			"--nats-listen", "nowhere", "--routes", "http://b:6222", "--stream-replicas", "9", "--stream-max-age", "-1h", "--stream-max-bytes", "-1"},
			map[string]string{"prefix": "a..b", "log-level": "loud", "log-format": "xml", "http-listen": "8000", "nats-listen": "nowhere",
				"routes": "http://b:6222|http://b:6222", "stream-replicas": "9|9", "stream-max-age": "-1h", "stream-max-bytes": "-1"},
			[]error{subjects.ErrInvalidPrefix}},
		{"max age under the dedup window", "broker", []string{"--stream-max-age", "1m"}, map[string]string{"stream-max-age": "1m"}, nil},
		{"bad http port", "bridge", []string{"--http-listen", "127.0.0.1:70000", "--nats-url", "http://x:4222,nats://ok:4222,nats://"},
			map[string]string{"http-listen": "127.0.0.1:70000", "nats-url": "http://x:4222|nats://"}, nil},
		{"empty nats urls", "tail", []string{"--nats-url", ","}, map[string]string{"nats-url": ""}, nil},
		{"tail", "tail", []string{"--library", "a b", "--type", "Document.added,document.*,x", "--subject", "other.>"},
			map[string]string{"library": "a b", "type": "Document.added|x", "subject": "other.>|other.>"},
			[]error{subjects.ErrInvalidLibraryID, subjects.ErrInvalidType, subjects.ErrInvalidPattern}},
		{"publish", "publish", []string{"--type", "document", "--data", "[1]"},
			map[string]string{"library": "", "type": "document", "data": "[1]"},
			[]error{subjects.ErrInvalidLibraryID, subjects.ErrInvalidType}},
		{"publish null data", "publish", []string{"--library", "lib-1", "--type", "document.added", "--data", "null"}, map[string]string{"data": "null"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.command, tt.args, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if c.Command != tt.command {
				t.Errorf("Config = %+v, want the loaded one with Validate's error", c)
			}
			if !reflect.DeepEqual(err, c.Validate()) {
				t.Errorf("Load's error %v is not Validate's", err)
			}
			if _, ok := errors.AsType[*config.FieldError](err); !ok {
				t.Errorf("errors.AsType[*config.FieldError](%v) failed", err)
			}
			got := map[string]string{}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				fe, ok := e.(*config.FieldError)
				if !ok {
					t.Errorf("%v is not a *FieldError", e)
					continue
				}
				if fe.Source != "" || !strings.HasPrefix(fe.Error(), fe.Field) {
					t.Errorf("FieldError %+v: %q", fe, fe)
				}
				if _, seen := got[fe.Field]; seen {
					got[fe.Field] += "|" + fe.Value
				} else {
					got[fe.Field] = fe.Value
				}
			}
			for field, value := range tt.want {
				if got[field] != value {
					t.Errorf("field %s: value %q, want %q", field, got[field], value)
				}
				delete(got, field)
			}
			if len(got) > 0 {
				t.Errorf("unexpected errors: %v in %v", got, err)
			}
			for _, is := range tt.is {
				if !errors.Is(err, is) {
					t.Errorf("error is not %v", is)
				}
			}
		})
	}

	t.Run("message names field and value", func(t *testing.T) {
		_, err := load(t, "serve", []string{"--log-level", "loud", "--nats-listen", "nowhere"}, nil)
		for _, want := range []string{`log-level "loud": want debug, info, warn or error`, `nats-listen "nowhere": want host:port`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("broker message", func(t *testing.T) {
		_, err := load(t, "broker", []string{"--stream-max-age", "1m", "--stream-replicas", "9"}, nil)
		for _, want := range []string{`stream-max-age "1m": want at least the 2m dedup window`, `stream-replicas "9": want 1 to 5`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})
	t.Run("routes need cluster-listen", func(t *testing.T) {
		_, err := load(t, "broker", []string{"--routes", "nats-route://a:6222"}, nil)
		fe, ok := errors.AsType[*config.FieldError](err)
		if !ok || fe.Field != "routes" || fe.Value != "nats-route://a:6222" {
			t.Errorf("FieldError = %+v (%v)", fe, err)
		}
	})
	t.Run("zero Config", func(t *testing.T) {
		if err := (config.Config{}).Validate(); !errors.Is(err, config.ErrUnknownCommand) {
			t.Errorf("Validate = %v, want ErrUnknownCommand", err)
		}
	})
	t.Run("valid", func(t *testing.T) {
		for _, args := range [][]string{
			{"--library", "lib-1", "--type", "document.*,*.deleted"},
			{"--subject", "events.library.*.document.>"},
			{"--prefix", "prod.events", "--subject", "prod.events.>", "--log-level", "debug", "--log-format", "json", "--nats-url", "tls://a:4222,ws://b:8080,wss://c"},
		} {
			mustLoad(t, "tail", args, nil)
		}
		mustLoad(t, "broker", []string{"--cluster-listen", "127.0.0.1:6222", "--routes", "nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223", "--stream-replicas", "2"}, nil)
		mustLoad(t, "bridge", []string{"--http-listen", ":0"}, nil)
	})
}

func TestHelp(t *testing.T) {
	for _, cmd := range config.Commands {
		for _, arg := range []string{"--help", "-h"} {
			t.Run(cmd.Name+" "+arg, func(t *testing.T) {
				var out bytes.Buffer
				c, err := config.Loader{Output: &out}.Load(cmd.Name, []string{"--log-level", "debug", arg})
				if cmd.Name == "version" || cmd.Name == "healthcheck" || cmd.Name == "token" {
					c, err = config.Loader{Output: &out}.Load(cmd.Name, []string{arg})
				}
				if !errors.Is(err, flag.ErrHelp) {
					t.Fatalf("error = %v, want flag.ErrHelp", err)
				}
				if c.Command != "" {
					t.Errorf("Config = %+v, want zero", c)
				}
				help := out.String()
				if !strings.Contains(help, "arrwcdc "+cmd.Name) || !strings.Contains(help, cmd.Summary) {
					t.Errorf("help lacks the usage line or summary:\n%s", help)
				}
				for _, name := range flagNames(cmd.Name) {
					env := "ARRWCDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
					if !strings.Contains(help, "--"+name+" ") && !strings.Contains(help, "--"+name+"\n") || !strings.Contains(help, "env "+env+"\n") {
						t.Errorf("help lacks --%s or %s:\n%s", name, env, help)
					}
				}
			})
		}
	}

	var out bytes.Buffer
	_, _ = config.Loader{Output: &out}.Load("demo-app", []string{"--help"})
	for _, want := range []string{"--http-listen host:port", "default 127.0.0.1:8080; env ARRWCDC_HTTP_LISTEN", "default nats://127.0.0.1:4222; env ARRWCDC_NATS_URL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo-app help lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	_, _ = config.Loader{Output: &out}.Load("serve", []string{"-help"})
	for _, want := range []string{"default 168h; env ARRWCDC_STREAM_MAX_AGE", "default ./data;", "default 127.0.0.1:8000;", "--routes urls\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("serve help lacks %q:\n%s", want, out.String())
		}
	}
}

// flagNames returns the flags of command, read back through the flag
// errors: a flag is known if Load does not call it an unknown setting.
func flagNames(command string) []string {
	all := []string{"config", "prefix", "log-level", "log-format", "nats-listen", "cluster-listen", "cluster-name", "routes",
		"monitor-listen", "data-dir", "server-name", "stream-replicas", "stream-max-age", "stream-max-bytes",
		"http-listen", "nats-url", "library", "type", "subject", "json", "data", "source", "id", "db", "search-events", "url",
		"since-seq", "since-time", "all", "allowed-origins", "max-connections", "max-conns-per-address", "max-publish-bytes", "client-queue-bytes",
		"scenario", "mode", "events", "size", "rate", "clients", "libraries", "duration", "cpu-profile", "mem-profile", "trace", "client-queue", "centrifugo",
		"users-file", "tls-cert", "tls-key", "tls-ca", "cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca", "nats-ws-listen",
		"token-secret-file", "token-public-key-file",
		"nats-user", "nats-password", "nats-nkey-seed-file", "nats-creds", "nats-token", "nats-tls-ca", "nats-tls-cert", "nats-tls-key",
		"publish", "ttl", "sub", "secret-file", "private-key-file"}
	var names []string
	for _, name := range all {
		_, err := config.Loader{}.Load(command, []string{"--" + name + "=x"})
		if !errors.Is(err, config.ErrUnknownSetting) {
			names = append(names, name)
		}
	}
	return names
}

func TestCommandFlags(t *testing.T) {
	bridgeFlags := []string{"allowed-origins", "client-queue", "client-queue-bytes", "max-connections", "max-conns-per-address", "max-publish-bytes"}
	common := []string{"config", "prefix", "log-level", "log-format"}
	brokerFlags := []string{"nats-listen", "cluster-listen", "cluster-name", "routes", "monitor-listen", "data-dir", "server-name", "stream-replicas", "stream-max-age", "stream-max-bytes",
		"users-file", "tls-cert", "tls-key", "tls-ca", "cluster-tls-cert", "cluster-tls-key", "cluster-tls-ca", "token-secret-file", "token-public-key-file", "nats-ws-listen"}
	client := []string{"nats-user", "nats-password", "nats-nkey-seed-file", "nats-creds", "nats-token", "nats-tls-ca", "nats-tls-cert", "nats-tls-key"}
	cat := func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	}
	want := map[string][]string{
		"serve":       cat(common, brokerFlags, bridgeFlags, []string{"http-listen"}),
		"broker":      cat(common, brokerFlags),
		"bridge":      cat(common, client, bridgeFlags, []string{"http-listen", "nats-url", "token-secret-file", "token-public-key-file"}),
		"demo-app":    cat(common, client, []string{"http-listen", "nats-url", "db", "source", "search-events"}),
		"tail":        cat(common, client, []string{"nats-url", "library", "type", "subject", "json", "since-seq", "since-time", "all"}),
		"publish":     cat(common, client, []string{"nats-url", "library", "type", "data", "source", "id"}),
		"bench":       cat(common, client, []string{"nats-url", "scenario", "mode", "events", "size", "rate", "clients", "libraries", "duration", "json", "cpu-profile", "mem-profile", "trace", "client-queue", "centrifugo"}),
		"version":     nil,
		"healthcheck": {"url"},
		"token":       {"config", "library", "all", "publish", "ttl", "sub", "secret-file", "private-key-file"},
	}
	if len(want) != len(config.Commands) {
		t.Fatalf("%d commands, want %d", len(config.Commands), len(want))
	}
	for _, cmd := range config.Commands {
		got := flagNames(cmd.Name)
		w := want[cmd.Name]
		if !sameSet(got, w) {
			t.Errorf("%s flags = %q, want %q", cmd.Name, got, w)
		}
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
