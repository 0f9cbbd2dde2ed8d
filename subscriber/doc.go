// Package subscriber is the Go API for consuming arrwcdc change events:
// filters, queue groups, durable consumers that resume, replay from a
// stream sequence or a time, parallel handlers that keep each library's
// order, retries with backoff, dead letters, and handler isolation.
//
// # Three ways to subscribe
//
// All three take a [Filter] and a [Handler] and return a [Subscription]
// with the same lifecycle ([Subscription.Drain], [Subscription.Unsubscribe],
// [Subscription.Done], [Subscription.Stats]):
//
//	Subscribe(ctx, nc, filter, h, opts…)         core NATS: live events, at most once, like `nats sub`
//	Consume(ctx, js, "audit", filter, h, opts…)  durable JetStream consumer: every stored event, acknowledged, resumes
//	Replay(ctx, js, filter, h, StartSeq(n))      ordered ephemeral consumer: history from a seq/time, then live; no acks
//
// For example, an audit logger that must see every event once, shared by
// any number of instances:
//
//	js, _ := jetstream.New(nc)
//	sub, err := subscriber.Consume(ctx, js, "audit-log", subscriber.Filter{Types: []string{"document.*"}},
//		subscriber.Idempotent(store, func(ctx context.Context, d subscriber.Delivery) error {
//			return writeAudit(ctx, d.Seq, d.Event) // an error: retried with backoff, then dead-lettered
//		}),
//		subscriber.Concurrency(4), subscriber.MaxDeliver(5))
//	if err != nil { … }          // errors.Is(err, ErrInvalidFilter), ErrInvalidOption, jetstream.ErrStreamNotFound…
//	defer sub.Drain(shutdownCtx) // acknowledges what it handled; the next Consume("audit-log") resumes after it
//
// Options that only some entry points take ([Queue] for Subscribe;
// [MaxDeliver], [Backoff], [AckWait], [MaxAckPending], [NoDeadLetter],
// [DeadLetterInvalid] for Consume; [Stream] and the start positions
// [DeliverAll], [DeliverNew], [StartSeq], [StartTime] for Consume and
// Replay) make the others fail with [ErrInvalidOption].
//
// # Subscribe: core NATS
//
// [Subscribe] subscribes with core NATS, so it sees what `nats sub` sees:
// events published while the subscription is live, at most once, and
// [Delivery.Seq] is 0. Overlapping type patterns ("document.*" and
// "*.added") deliver an event once; in a [Queue] group, each event goes to
// one member. Backpressure: each worker has a bounded queue
// ([WorkerQueue]); while the queue of the event's worker is full, reading
// stops and the buffer fills; when the buffer ([PendingLimit]) is full,
// NATS drops further messages for this subscription (a slow consumer),
// counted in [Stats.Dropped]. A consumer that must not miss events uses
// Consume.
//
// # Consume: durable consumers
//
// [Consume] creates (or reuses) a durable pull consumer on the EVENTS
// stream whose filter subjects come from the [Filter], starting where the
// start option says when it is created ([DeliverAll] by default); a
// consumer that exists already resumes after the last event it
// acknowledged, whatever the start option. Every delivery carries
// [Delivery.Seq], the stream sequence, and [Delivery.Attempt].
//
// An event is settled once its handler returns:
//
//   - nil (or Filter.Match rejected it): acknowledged; this durable
//     consumer never delivers it again.
//   - an error or a panic: given back to the server with a delay
//     ([Backoff]; by default 1 s, 5 s, 15 s, 30 s, then every minute),
//     and delivered again, to this subscription or another of the
//     durable. Other events flow on meanwhile.
//   - an error on the [MaxDeliver]-th delivery or a later one (default
//     5): published to the dead-letter stream, then terminated. If that
//     publish fails, the event is given back with the backoff delay and
//     tried again.
//   - not a valid event: counted in [Stats.Invalid], logged and
//     terminated, never delivered again; also dead-lettered with
//     [DeadLetterInvalid].
//
// Delivery is at least once: an event whose acknowledgement is lost (the
// process dies after the handler returned, or the handler outruns
// [AckWait] while queued) comes again. Wrap handlers that must not act
// twice in [Idempotent], which runs the handler once per event id. A
// handler that runs longer than [AckWait] keeps its event: the
// subscription tells the server it is in progress (until [HandlerTimeout],
// if set).
//
// Subscriptions that use the same durable name, in one process or many,
// share the events (the durable equivalent of a queue group): the server
// hands each event to one of them at a time. [Subscription.Drain] stops
// asking for events, handles and acknowledges the ones received, and
// returns; [Subscription.Unsubscribe] stops at once and gives the queued
// events back, so another subscription gets them at once.
//
// # Dead letters
//
// Dead letters live outside the prefix (DESIGN §4), in the stream
// [DLQStream] ("DLQ") that captures "dlq.<prefix>.>", created by Consume
// through [EnsureDLQ] unless [NoDeadLetter] is given. A dead letter is
// published on "dlq." + its original subject with the original body and
// headers (but the Nats-* ones) and [HeaderDLQReason] (the handler's last
// error, or "invalid: …"), [HeaderDLQSubject], [HeaderDLQStream],
// [HeaderDLQSeq], [HeaderDLQConsumer], [HeaderDLQAttempts],
// [HeaderDLQTime] and [HeaderDLQEventID]. Its Nats-Msg-Id is
// "<stream>-<consumer>-<seq>", so a dead letter published twice is stored
// once, and two consumers that give up on the same event both leave one.
// `nats stream view DLQ` shows them.
//
// # Replay: ordered consumers
//
// [Replay] reads the stream through an ordered ephemeral consumer: from
// the first stored event ([DeliverAll], the default), a sequence
// ([StartSeq]), a time the broker stored the event at or after
// ([StartTime]), or only new events ([DeliverNew]); then it goes on with
// new events until it stops. Nothing is acknowledged or retried: a handler
// error is counted in [Stats.Failed] and logged. The client library
// re-creates the consumer after a gap or a reconnect and continues after
// the last sequence it delivered, so events arrive once, in stream order.
// The consumer is deleted when the subscription stops. `arrwcdc tail
// --since-seq N` is a Replay.
//
// # Order
//
// With [Concurrency](n), n workers run the handler in parallel; the
// library id picks the worker, so events of one library are handled one at
// a time, in the order the subscription received them, while up to n
// libraries are handled in parallel. A worker settles an event before it
// takes the next one, so on a durable consumer a library's next event is
// not handled before the previous one was acknowledged or given back.
//
// What that order is:
//
//   - Subscribe: the order the server sent the events (one publisher's
//     events in publish order), even when the filter needs several NATS
//     subscriptions.
//   - Replay: stream order.
//   - Consume: stream order for first deliveries to one subscription. An
//     event delivered again (after a handler error, an ack timeout or a
//     restart) comes after later events of its library that were
//     delivered meanwhile, and with several subscriptions on one durable,
//     two events of one library may be handled at the same time by
//     different subscriptions. [MaxAckPending](1) gives strict stream
//     order, retries and all subscriptions included, one event at a time:
//     the server sends the next event only when the previous one was
//     acknowledged or dead-lettered.
//
// # Validation and isolation
//
// Messages that are not valid events (DESIGN §3: not a JSON object, a
// missing or malformed field, data that is not an object, a library id or
// type that disagrees with the subject, a subject outside the grammar) are
// counted in [Stats.Invalid], logged and skipped; they never reach the
// handler and never stop the subscription. An event without "id" takes the
// Nats-Msg-Id header as its id.
//
// A handler that returns an error or panics is logged and counted in
// [Stats.Failed]; later events, other libraries and other subscriptions are
// not affected. The [Filter.Match] predicate is isolated the same way.
//
// # Lifecycle and concurrency
//
// Handlers and the Match predicate run on the package's worker goroutines,
// at most [Concurrency] at once, so they must be safe for concurrent use
// when n > 1. A handler's context carries the values of the ctx given to
// Subscribe, Consume or Replay, the [HandlerTimeout] deadline if set, and
// is cancelled by [Subscription.Unsubscribe].
//
// [Subscription.Drain] stops receiving and waits until every queued event
// has been handled; [Subscription.Unsubscribe] stops at once and drops what
// is queued. Both are idempotent, safe to call concurrently, and return
// only after every goroutine the subscription started has exited, so a
// handler must not call them itself (it would wait for itself); it can
// start them in a goroutine. When the ctx given to the entry point ends,
// the subscription drains by itself; [Subscription.Done] is closed once it
// has stopped.
package subscriber
