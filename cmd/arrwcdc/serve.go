package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/bridge"
	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/config"
)

// shutdownTimeout bounds the drain after SIGINT/SIGTERM.
const shutdownTimeout = 10 * time.Second

// component is a part of a process with a start and a graceful stop. serve
// runs the broker and then the bridge; each stops in reverse order.
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// runServe runs the all-in-one: the embedded broker and, next to it, the
// bridge on an in-process connection (no TCP between them). One token
// verifier serves both doors: the bridge and the broker's auth callout.
func runServe(ctx context.Context, cfg config.Config, e env) error {
	log := e.log
	tokens, err := auth.LoadVerifier(cfg.TokenSecretFile, cfg.TokenPublicKeyFile)
	if err != nil {
		return err
	}
	cfg.Broker.Tokens = tokens
	b, err := broker.New(cfg.Broker, log)
	if err != nil {
		return err
	}
	br := newBridgeComponent(cfg, tokens, log, func() (*nats.Conn, error) {
		return b.Connect(nats.Name("arrwcdc-bridge"), nats.MaxReconnects(-1))
	})
	return runComponents(ctx, log, e, []component{b, br}, func() {
		printURLs(e, b)
		fmt.Fprintf(e.stdout, "HTTP:       %s  (dashboard /, stats /v1/events/stats, ws /v1/libraries/{id}/ws)\n", br.b.URL())
	})
}

// runBridge runs the HTTP/WebSocket bridge against the brokers of --nats-url.
func runBridge(ctx context.Context, cfg config.Config, e env) error {
	log := e.log
	tokens, err := auth.LoadVerifier(cfg.TokenSecretFile, cfg.TokenPublicKeyFile)
	if err != nil {
		return err
	}
	br := newBridgeComponent(cfg, tokens, log, func() (*nats.Conn, error) { return connect(cfg, "arrwcdc-bridge") })
	return runComponents(ctx, log, e, []component{br}, func() {
		fmt.Fprintf(e.stdout, "HTTP:       %s\n", br.b.URL())
	})
}

// bridgeComponent owns the bridge's NATS connection: it dials on Start
// and drains it after the bridge has stopped.
type bridgeComponent struct {
	cfg  bridge.Config
	log  *zap.Logger
	dial func() (*nats.Conn, error)

	nc *nats.Conn
	b  *bridge.Bridge
}

func (c *bridgeComponent) Start(ctx context.Context) error {
	nc, err := c.dial()
	if err != nil {
		return err
	}
	b, err := bridge.New(c.cfg, nc, c.log)
	if err == nil {
		err = b.Start(ctx)
	}
	if err != nil {
		nc.Close()
		return err
	}
	c.nc, c.b = nc, b
	return nil
}

func (c *bridgeComponent) Shutdown(ctx context.Context) error {
	err := c.b.Shutdown(ctx)
	_ = c.nc.FlushTimeout(time.Second)
	c.nc.Close()
	return err
}

// runBroker runs one broker node.
func runBroker(ctx context.Context, cfg config.Config, e env) error {
	log := e.log
	b, err := broker.New(cfg.Broker, log)
	if err != nil {
		return err
	}
	return runComponents(ctx, log, e, []component{b}, func() { printURLs(e, b) })
}

// runComponents starts parts in order, calls ready, waits for ctx, then
// shuts them down in reverse order with a fresh deadline. A part that fails
// to start stops the ones already started.
func runComponents(ctx context.Context, log *zap.Logger, _ env, parts []component, ready func()) error {
	var started []component
	stopAll := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		var errs []error
		for i := len(started) - 1; i >= 0; i-- {
			errs = append(errs, started[i].Shutdown(sctx))
		}
		return errors.Join(errs...)
	}
	for _, p := range parts {
		if err := p.Start(ctx); err != nil {
			return errors.Join(err, stopAll())
		}
		started = append(started, p)
	}
	ready()
	<-ctx.Done()
	log.Info("shutting down")
	return stopAll()
}

func printURLs(e env, b *broker.Broker) {
	fmt.Fprintf(e.stdout, "NATS:       %s\n", b.ClientURL())
	if u := b.ClusterURL(); u != "" {
		fmt.Fprintf(e.stdout, "cluster:    %s\n", u)
	}
	if u := b.WebSocketURL(); u != "" {
		fmt.Fprintf(e.stdout, "websocket:  %s  (nats.ws)\n", u)
	}
	if u := b.MonitorURL(); u != "" {
		fmt.Fprintf(e.stdout, "monitoring: %s\n", u)
	}
	fmt.Fprintf(e.stdout, "stream:     %s (subjects %s.>)\n", broker.StreamName, b.Config().Prefix)
}

// newBridgeComponent is the bridge of the settings, with the token
// verifier (nil: auth off), dialling NATS with dial.
func newBridgeComponent(cfg config.Config, tokens *auth.Verifier, log *zap.Logger, dial func() (*nats.Conn, error)) *bridgeComponent {
	bc := cfg.Bridge
	bc.Tokens = tokens
	return &bridgeComponent{cfg: bc, log: log, dial: dial}
}
