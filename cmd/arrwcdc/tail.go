package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// runTail prints events as they arrive until ctx ends: one human-readable
// line each, or with --json the event's JSON (with seq when known).
//
// Without a start position it subscribes with core NATS, as `nats sub`
// does: live events only, without their stream sequence. With --since-seq,
// --since-time or --all it reads the EVENTS stream through an ordered
// consumer instead: the stored events from there, in stream order, then
// the live ones, each with its seq.
func runTail(ctx context.Context, cfg config.Config, e env) error {
	log := e.log
	nc, err := connect(cfg, "arrwcdc-tail")
	if err != nil {
		return err
	}
	defer nc.Close()

	out := bufio.NewWriter(e.stdout)
	var mu sync.Mutex // handlers of one subscription run one at a time, but keep it obvious
	handler := func(_ context.Context, d subscriber.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Tail.JSON {
			out.Write(appendJSON(nil, d))
			out.WriteByte('\n')
		} else {
			writePretty(out, d)
		}
		return out.Flush()
	}
	filter := subscriber.Filter{LibraryID: cfg.Tail.LibraryID, Types: cfg.Tail.Types, Subject: cfg.Tail.Subject}
	opts := []subscriber.Option{subscriber.WithPrefix(cfg.Prefix), subscriber.WithLogger(log)}
	var sub *subscriber.Subscription
	if t := cfg.Tail; t.Replay() {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		switch {
		case t.SinceSeq > 0:
			opts = append(opts, subscriber.StartSeq(t.SinceSeq))
		case !t.SinceTime.IsZero():
			opts = append(opts, subscriber.StartTime(t.SinceTime))
		default:
			opts = append(opts, subscriber.DeliverAll())
		}
		sub, err = subscriber.Replay(ctx, js, filter, handler, opts...)
		if err != nil {
			return err
		}
	} else {
		sub, err = subscriber.Subscribe(ctx, nc, filter, handler, opts...)
		if err != nil {
			return err
		}
		if err := nc.Flush(); err != nil { // the subscription is live on the server
			return err
		}
	}
	log.Debug("tailing", zap.String("url", nc.ConnectedUrl()), zap.Bool("replay", cfg.Tail.Replay()))
	<-ctx.Done()
	_ = sub.Unsubscribe()
	if st := sub.Stats(); st.Invalid > 0 {
		fmt.Fprintf(e.stderr, "skipped %d invalid message(s)\n", st.Invalid)
	}
	return nil
}

// appendJSON appends the event's JSON object with "seq" after "id" when
// the stream sequence is known.
func appendJSON(dst []byte, d subscriber.Delivery) []byte {
	if d.Seq == 0 {
		return event.AppendJSON(dst, &d.Event)
	}
	dst = append(dst, '{')
	if d.ID != "" {
		dst = append(dst, `"id":`...)
		dst = event.AppendString(dst, d.ID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendUint(dst, d.Seq, 10)
	dst = append(dst, ',')
	dst = event.AppendFields(dst, &d.Event)
	return append(dst, '}')
}

// writePretty writes one line: time, type, library, source, id, data.
func writePretty(w *bufio.Writer, d subscriber.Delivery) {
	ts := d.Timestamp.UTC().Format(event.TimeLayout)
	fmt.Fprintf(w, "%s  %-18s library=%s", ts, d.Type, d.LibraryID)
	if d.Seq > 0 {
		fmt.Fprintf(w, " seq=%d", d.Seq)
	}
	if d.Source != "" {
		fmt.Fprintf(w, " source=%s", d.Source)
	}
	data := "{}"
	if len(d.Data) > 0 {
		data = string(d.Data)
	}
	fmt.Fprintf(w, " id=%s data=%s\n", d.ID, data)
}

// connect dials the configured NATS servers with the configured
// credentials and TLS (--nats-user…, --nats-tls-ca…), retrying forever
// once connected (operators' tools should ride out a broker restart).
func connect(cfg config.Config, name string) (*nats.Conn, error) {
	opts, err := cfg.NATSOptions()
	if err != nil {
		return nil, err
	}
	opts = append([]nats.Option{nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect(strings.Join(cfg.NATSURL, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(cfg.NATSURL, ","), err)
	}
	return nc, nil
}
