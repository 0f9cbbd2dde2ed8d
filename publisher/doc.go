// Package publisher sends arrwcdc change events into the EVENTS JetStream
// stream with at-least-once delivery. It is the API that repository code
// calls, directly or through [Hooks], when a library or document changes.
//
// # Publishing
//
// [New] wraps a *nats.Conn that the caller owns (the publisher never closes
// it). [Publisher.Publish] fills an event's empty ID (a UUIDv7 from
// [event.NewID]), Source (the configured one, the host name by default) and
// Timestamp (now, UTC), validates and encodes it with [event.Encode], and
// publishes it on
//
//	<prefix>.library.<library_id>.<entity>.<action>
//
// with these headers:
//
//	Nats-Msg-Id:     <id>              (JetStream drops a repeat within its duplicate window)
//	Content-Type:    application/json
//	ce-specversion:  1.0               (CloudEvents NATS binding)
//	ce-id:           <id>
//	ce-type:         <type>
//	ce-source:       <source>, or "arrwcdc" when the event has none
//	ce-time:         <timestamp>       (RFC 3339 UTC, [event.TimeLayout])
//
// Publish returns only after JetStream acknowledged the event; the [Ack]
// carries the stream sequence and whether the stream dropped the event as a
// duplicate of one with the same ID. Retrying a failed Publish with the same
// event (same ID) is therefore safe within the stream's duplicate window
// (2 minutes by default).
//
// [Publisher.PublishAsync] prepares the event the same way, sends it without
// waiting and returns a [Future]. At most [WithMaxPending] async publishes
// wait for their ack at once; beyond that PublishAsync blocks for up to the
// default timeout ([WithDefaultTimeout]) and then fails with
// [ErrTooManyPending]. The same timeout bounds the wait for each ack
// (checked every eighth of it, so a late ack fails up to an eighth late).
// A Future fails with [jetstream.ErrAsyncPublishTimeout] when its ack is
// late, [jetstream.ErrNoStreamResponse] when no stream answered (after two
// retries 250 ms apart), the server's *[jetstream.APIError] for an error
// ack, [nats.ErrDisconnected] when the connection reconnected before the
// ack came (the event may have been stored), [nats.ErrConnectionClosed]
// when it closed, and [jetstream.ErrJetStreamPublisherClosed] when
// [Publisher.Close] gave up waiting. [Publisher.PublishEncodedAsync] sends
// an event already encoded, for the outbox relay.
//
// [WithCoreNATS] switches to fire-and-forget core NATS publishing: no ack,
// no sequence, no guarantee. It is never the default.
//
// # Errors
//
// An event that is not fit for the bus is rejected before anything is sent:
// the error wraps [event.ErrInvalid] (and the subjects sentinel, such as
// [subjects.ErrInvalidLibraryID], where one applies) or [event.ErrTooLarge].
// Failures of the broker or the connection are wrapped with the subject,
// "publish <subject>: <cause>", so errors.Is finds context.DeadlineExceeded,
// [jetstream.ErrNoStreamResponse] and the like. After [Publisher.Close] every
// publish returns [ErrClosed]. [New] and [NewHooks] return errors wrapping
// [ErrInvalidOption] for a bad setting.
//
// # Concurrency
//
// A [Publisher], its [Future]s and the [Hooks] from [NewHooks] are safe for
// concurrent use. [Publisher.Close] stops new publishes, waits for the
// outstanding ones (or its context) and releases the publisher's NATS
// subscription; the connection stays open.
//
// # Hooks
//
// [Hooks] is the interface a repository holds, so it knows nothing about
// NATS: one method per built-in event type. [NewHooks] returns one backed by
// a Publisher, where the noisy search.performed events can be switched off
// or sampled; [NopHooks] does nothing, for repositories without a bus.
package publisher
