// Command metricscollector exposes Prometheus metrics of the event
// stream; instances share the work through a queue group.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

func main() {
	url := flag.String("nats-url", nats.DefaultURL, "NATS server URLs, comma-separated")
	listen := flag.String("listen", "127.0.0.1:9108", "address of /metrics")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *url, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "metricscollector:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, listen string) error {
	log, _ := zap.NewProduction()
	defer log.Sync() //nolint:errcheck
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := prometheus.NewRegistry()
	c := NewCollector(reg)
	sub, err := c.Start(ctx, nc, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: listen, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-sub.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics", zap.String("addr", listen))
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
