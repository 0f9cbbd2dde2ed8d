package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/arrwdb/arrwcdc/config"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

// runPublish publishes the event given by flags, or, without --type, each
// JSON envelope read from stdin (one or more objects, whitespace between
// them; id and timestamp may be missing). Every event is validated before
// the first is sent, so bad input publishes nothing. It prints one line per
// event: id, stream sequence, and "(duplicate)" when JetStream dropped it.
func runPublish(ctx context.Context, cfg config.Config, e env) error {
	evs, err := publishInput(cfg.Publish, e.stdin)
	if err != nil {
		return err
	}
	log := e.log
	nc, err := connect(cfg, "arrwcdc-publish")
	if err != nil {
		return err
	}
	defer nc.Close()
	opts := []publisher.Option{publisher.WithPrefix(cfg.Prefix), publisher.WithLogger(log)}
	if cfg.Publish.Source != "" {
		opts = append(opts, publisher.WithSource(cfg.Publish.Source))
	}
	pub, err := publisher.New(nc, opts...)
	if err != nil {
		return err
	}
	defer pub.Close(context.WithoutCancel(ctx))
	for _, ev := range evs {
		ack, err := pub.Publish(ctx, ev)
		if err != nil {
			return err
		}
		dup := ""
		if ack.Duplicate {
			dup = " (duplicate)"
		}
		fmt.Fprintf(e.stdout, "published %s seq=%d%s\n", ack.ID, ack.Seq, dup)
	}
	return nil
}

func publishInput(pc config.PublishConfig, stdin io.Reader) ([]event.Event, error) {
	if pc.Type != "" {
		ev := event.Event{ID: pc.ID, Type: pc.Type, LibraryID: pc.LibraryID, Timestamp: event.Now(), Source: pc.Source}
		if pc.Data != "" {
			ev.Data = json.RawMessage(pc.Data)
		}
		if err := ev.Validate(); err != nil {
			return nil, err
		}
		return []event.Event{ev}, nil
	}
	if stdin == nil {
		return nil, errors.New("publish: give --type and --library, or an event as JSON on stdin")
	}
	dec := json.NewDecoder(io.LimitReader(stdin, 64<<20))
	var evs []event.Event
	for i := 1; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("stdin: event %d: %w", i, err)
		}
		ev, err := decodeLenient(raw)
		if err != nil {
			return nil, fmt.Errorf("stdin: event %d: %w", i, err)
		}
		if ev.Source == "" {
			ev.Source = pc.Source
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		return nil, errors.New("publish: no event on stdin (give --type and --library, or JSON on stdin)")
	}
	return evs, nil
}

// decodeLenient decodes an envelope whose timestamp may be missing (it is
// then now); everything else follows event.Decode.
func decodeLenient(raw []byte) (event.Event, error) {
	var probe struct {
		Timestamp *json.RawMessage `json:"timestamp"`
	}
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		if err := json.Unmarshal(raw, &probe); err == nil && probe.Timestamp == nil {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return event.Event{}, err
			}
			ts, _ := json.Marshal(event.Now().Format(event.TimeLayout))
			m["timestamp"] = ts
			raw, _ = json.Marshal(m)
		}
	}
	return event.Decode(raw, 0)
}
