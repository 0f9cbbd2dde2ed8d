package config_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/arrwdb/arrwcdc/config"
)

func TestBridgeSettings(t *testing.T) {
	env := map[string]string{"ARRWCDC_MAX_CONNECTIONS": "10"}
	c, err := config.Load("bridge", []string{"--allowed-origins", "https://*.example.com,http://localhost:3000",
		"--client-queue", "1024", "--client-queue-bytes", "8388608", "--max-conns-per-address", "-1", "--max-publish-bytes", "1048576",
		"--http-listen", "127.0.0.1:0", "--prefix", "prod.events"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	b := c.Bridge
	if !slices.Equal(b.AllowedOrigins, []string{"https://*.example.com", "http://localhost:3000"}) || b.ClientQueue != 1024 || b.ClientQueueBytes != 8<<20 ||
		b.MaxConnections != 10 || b.MaxConnsPerAddress != -1 || b.MaxPublishBytes != 1<<20 {
		t.Fatalf("bridge config = %+v", b)
	}
	if b.HTTPListen != "127.0.0.1:0" || b.Prefix != "prod.events" {
		t.Fatalf("listen/prefix not carried into the bridge: %q %q", b.HTTPListen, b.Prefix)
	}
	for _, bad := range [][]string{{"--allowed-origins", "[bad"}, {"--client-queue", "-5"}, {"--client-queue-bytes", "-1"}, {"--max-publish-bytes", "-1"}} {
		_, err := config.Load("serve", bad, nil)
		if fe, ok := errors.AsType[*config.FieldError](err); !ok || fe.Field != bad[0][2:] {
			t.Errorf("%v: err = %v, want a FieldError on %s", bad, err, bad[0])
		}
	}
}
