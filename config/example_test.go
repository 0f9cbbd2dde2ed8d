package config_test

import (
	"errors"
	"fmt"

	"github.com/arrwdb/arrwcdc/config"
)

func ExampleLoad() {
	env := map[string]string{
		"ARRWCDC_NATS_LISTEN":    "127.0.0.1:4300",
		"ARRWCDC_STREAM_MAX_AGE": "24h",
	}
	getenv := func(k string) string { return env[k] } // os.Getenv in main
	args := []string{"--nats-listen", "127.0.0.1:0", "--routes", "nats-route://a:6222,nats-route://b:6222", "--cluster-listen", "127.0.0.1:6222"}

	cfg, err := config.Load("serve", args, getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Broker.NATSListen, cfg.Broker.Stream.MaxAge, cfg.Broker.Routes, cfg.HTTPListen, cfg.Prefix)
	// Output: 127.0.0.1:0 24h0m0s [nats-route://a:6222 nats-route://b:6222] 127.0.0.1:8000 events
}

func ExampleFieldError() {
	_, err := config.Load("tail", []string{"--library", "lib 1", "--log-level", "loud"}, nil)
	fmt.Println(err)
	if fe, ok := errors.AsType[*config.FieldError](err); ok {
		fmt.Println("first bad field:", fe.Field)
	}
	// Output:
	// log-level "loud": want debug, info, warn or error
	// library: invalid library id: "lib 1": character ' ' at 3 is not one of [A-Za-z0-9_-]
	// first bad field: log-level
}
