package config

import (
	"strings"
	"testing"
)

// TestTable checks the rows of settings: known commands, no name twice in
// a command, an argument name in each non-bool usage, defaults that parse.
func TestTable(t *testing.T) {
	for _, s := range settings {
		for _, cmd := range strings.Fields(s.cmds) {
			if !knownCommand(cmd) {
				t.Errorf("--%s: unknown command %q", s.name, cmd)
			}
		}
		var c Config
		if _, isBool := s.bind(&c).(*boolValue); !isBool && strings.Count(s.usage, "`") != 2 {
			t.Errorf("--%s: usage %q does not name its `argument`", s.name, s.usage)
		}
	}
	for _, cmd := range Commands {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: %v", cmd.Name, r) // a name twice, or a default that does not parse
				}
			}()
			if _, err := newFlagSet(cmd.Name); err != nil {
				t.Error(err)
			}
		}()
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[string]string{"168h": "168h", "2m": "2m", "90m": "1h30m", "1h0m30s": "1h0m30s", "0": "0s", "1.5s": "1.5s", "-1h": "-1h"} {
		var v durationValue
		if err := v.Set(in); err != nil {
			t.Fatal(err)
		}
		if got := v.String(); got != want {
			t.Errorf("%s: String = %q, want %q", in, got, want)
		}
	}
}
