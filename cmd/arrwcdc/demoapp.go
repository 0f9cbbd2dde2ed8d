package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/demoapp"
	"github.com/arrwdb/arrwcdc/publisher"
)

// runDemoApp runs the reference library service against --nats-url.
func runDemoApp(ctx context.Context, cfg config.Config, e env) error {
	log := e.log
	nc, err := connect(cfg, "arrwcdc-demo-app")
	if err != nil {
		return err
	}
	defer nc.Close()
	hooks := publisher.HooksConfig{SearchSampleRate: cfg.DemoApp.SearchRate, DisableSearch: cfg.DemoApp.SearchRate == 0}
	if hooks.DisableSearch {
		hooks.SearchSampleRate = 1
	}
	app := demoapp.NewApp(demoapp.Config{
		HTTPListen: cfg.HTTPListen, DB: cfg.DemoApp.DB, Prefix: cfg.Prefix, Source: cfg.DemoApp.Source, Hooks: hooks,
	}, nc, log)
	return runComponents(ctx, log, e, []component{app}, func() {
		fmt.Fprintf(e.stdout, "HTTP:       %s\n", app.URL())
	})
}

// runHealthcheck exits 0 when --url answers 2xx within 2 s. The image is
// FROM scratch, so the container health checks use the binary itself.
func runHealthcheck(ctx context.Context, cfg config.Config, _ env) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Healthcheck.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", cfg.Healthcheck.URL, resp.Status)
	}
	return nil
}
