// Command cacheinvalidator drops cached entries of a library whenever its
// documents change.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

func main() {
	url := flag.String("nats-url", nats.DefaultURL, "NATS server URLs, comma-separated")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, _ := zap.NewProduction()
	defer log.Sync() //nolint:errcheck
	nc, err := nats.Connect(*url, nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cacheinvalidator:", err)
		os.Exit(1)
	}
	defer nc.Close()
	c := NewCache()
	sub, err := c.Watch(ctx, nc, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cacheinvalidator:", err)
		os.Exit(1)
	}
	log.Info("invalidating caches on document and library changes")
	<-sub.Done()
}
