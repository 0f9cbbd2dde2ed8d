package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arrwdb/arrwcdc/config"
)

func TestTailReplaySettings(t *testing.T) {
	at := time.Date(2025, 10, 27, 6, 1, 0, 0, time.UTC)
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want config.TailConfig
	}{
		{"none", nil, nil, "", config.TailConfig{}},
		{"since seq", []string{"--since-seq", "42"}, nil, "", config.TailConfig{SinceSeq: 42}},
		{"since time", []string{"--since-time", "2025-10-27T06:01:00Z"}, nil, "", config.TailConfig{SinceTime: at}},
		{"since time with offset", []string{"--since-time=2025-10-27T08:01:00+02:00"}, nil, "", config.TailConfig{SinceTime: at}},
		{"since time without zone is UTC", []string{"--since-time", "2025-10-27T06:01:00.000000"}, nil, "", config.TailConfig{SinceTime: at}},
		{"all", []string{"--all"}, nil, "", config.TailConfig{All: true}},
		{"env", nil, map[string]string{"ARRWCDC_SINCE_SEQ": "7"}, "", config.TailConfig{SinceSeq: 7}},
		{"yaml", nil, nil, "since_time: 2025-10-27T06:01:00Z\n", config.TailConfig{SinceTime: at}},
		{"flag over env", []string{"--since-seq", "9"}, map[string]string{"ARRWCDC_SINCE_SEQ": "7"}, "", config.TailConfig{SinceSeq: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.yaml != "" {
				args = append([]string{"--config", writeFile(t, tt.yaml)}, args...)
			}
			c := mustLoad(t, "tail", args, tt.env)
			if !c.Tail.SinceTime.Equal(tt.want.SinceTime) || c.Tail.SinceSeq != tt.want.SinceSeq || c.Tail.All != tt.want.All {
				t.Errorf("Tail = %+v, want %+v", c.Tail, tt.want)
			}
			if c.Tail.Replay() != (tt.name != "none") {
				t.Errorf("Replay() = %v", c.Tail.Replay())
			}
		})
	}
}

func TestTailReplayErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		field string
		msg   string // in the error
	}{
		{"seq not a number", []string{"--since-seq", "abc"}, nil, "since-seq", `--since-seq "abc": want a stream sequence, 1 or more`},
		{"seq negative", []string{"--since-seq=-1"}, nil, "since-seq", `--since-seq "-1"`},
		{"seq zero", []string{"--since-seq", "0"}, nil, "since-seq", "--all replays everything"},
		{"seq in env", nil, map[string]string{"ARRWCDC_SINCE_SEQ": "x"}, "since-seq", `ARRWCDC_SINCE_SEQ "x"`},
		{"time not RFC 3339", []string{"--since-time", "yesterday"}, nil, "since-time", `--since-time "yesterday": want an RFC 3339 time`},
		{"time date only", []string{"--since-time", "2025-10-27"}, nil, "since-time", "want an RFC 3339 time"},
		{"time before 1970", []string{"--since-time", "0001-01-01T00:00:00Z"}, nil, "since-time", "from 1970"},
		{"seq and all", []string{"--since-seq", "5", "--all"}, nil, "all", "all: cannot be combined with --since-seq"},
		{"time and seq", []string{"--since-time", "2025-10-27T06:01:00Z", "--since-seq", "3"}, nil, "since-time", `since-time "2025-10-27T06:01:00Z": cannot be combined with --since-seq`},
		{"env and flag", []string{"--all"}, map[string]string{"ARRWCDC_SINCE_TIME": "2025-10-27T06:01:00Z"}, "all", "cannot be combined with --since-time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "tail", tt.args, tt.env)
			if err == nil {
				t.Fatalf("no error: %+v", c.Tail)
			}
			fe, ok := errors.AsType[*config.FieldError](err)
			if !ok || fe.Field != tt.field {
				t.Fatalf("error %v: want a FieldError of %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q lacks %q", err, tt.msg)
			}
		})
	}
	// All three: two errors, each naming the first one given.
	_, err := load(t, "tail", []string{"--all", "--since-seq", "1", "--since-time", "2025-10-27T06:01:00Z"}, nil)
	if err == nil || strings.Count(err.Error(), "cannot be combined with --since-seq") != 2 {
		t.Errorf("three starts: %v", err)
	}
}
