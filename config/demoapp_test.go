package config_test

import (
	"errors"
	"testing"

	"github.com/arrwdb/arrwcdc/config"
)

func TestDemoAppAndHealthcheckSettings(t *testing.T) {
	c, err := config.Load("demo-app", []string{"--db", "/tmp/x.db", "--source", "app-2", "--search-events", "0.25"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DemoApp.DB != "/tmp/x.db" || c.DemoApp.Source != "app-2" || c.DemoApp.SearchRate != 0.25 || c.HTTPListen != config.DefaultDemoAppHTTPListen {
		t.Fatalf("demo-app config = %+v", c)
	}
	env := map[string]string{"ARRWCDC_SEARCH_EVENTS": "0"}
	if c, err := config.Load("demo-app", nil, func(k string) string { return env[k] }); err != nil || c.DemoApp.SearchRate != 0 || c.DemoApp.DB != config.DefaultDemoAppDB {
		t.Fatalf("env: %+v, %v", c.DemoApp, err)
	}
	for _, bad := range [][]string{{"--search-events", "1.5"}, {"--search-events", "-1"}, {"--search-events", "NaN"}, {"--db", ""}} {
		_, err := config.Load("demo-app", bad, nil)
		if fe, ok := errors.AsType[*config.FieldError](err); !ok || fe.Field != bad[0][2:] {
			t.Errorf("%v: err = %v, want a FieldError on %s", bad, err, bad[0])
		}
	}
	if c, err := config.Load("healthcheck", []string{"--url", "http://127.0.0.1:8222/healthz"}, nil); err != nil || c.Healthcheck.URL == "" {
		t.Fatalf("healthcheck: %+v, %v", c, err)
	}
	for _, bad := range []string{"", "ftp://x", "127.0.0.1:8222"} {
		if _, err := config.Load("healthcheck", []string{"--url", bad}, nil); err == nil {
			t.Errorf("healthcheck --url %q accepted", bad)
		}
	}
}
