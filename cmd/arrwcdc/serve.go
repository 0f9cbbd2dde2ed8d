package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

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
// bridge on its in-process connection.
func runServe(ctx context.Context, cfg config.Config, e env) error {
	log, err := newLogger(cfg, e.stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	b, err := broker.New(cfg.Broker, log)
	if err != nil {
		return err
	}
	parts := []component{b}
	return runComponents(ctx, log, e, parts, func() {
		printURLs(e, b)
	})
}

// runBroker runs one broker node.
func runBroker(ctx context.Context, cfg config.Config, e env) error {
	log, err := newLogger(cfg, e.stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
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
	if u := b.MonitorURL(); u != "" {
		fmt.Fprintf(e.stdout, "monitoring: %s\n", u)
	}
	fmt.Fprintf(e.stdout, "stream:     %s (subjects %s.>)\n", broker.StreamName, b.Config().Prefix)
}
