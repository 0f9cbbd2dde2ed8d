// Package subscriber is the Go API for consuming arrwcdc change events:
// filters, queue groups, parallel handlers that keep each library's order,
// and handler isolation.
//
// [Subscribe] translates a [Filter] into NATS subscriptions on the event
// subjects (DESIGN §2), one per subject pattern, and calls a [Handler] for
// every valid event that matches:
//
//	sub, err := subscriber.Subscribe(ctx, nc,
//		subscriber.Filter{LibraryID: libID, Types: []string{"document.*"}},
//		func(ctx context.Context, d subscriber.Delivery) error {
//			return index(ctx, d.LibraryID, d.Data)
//		},
//		subscriber.Concurrency(4), subscriber.Queue("indexers"))
//	if err != nil { … }                // errors.Is(err, subjects.ErrInvalidLibraryID), ErrInvalidOption, …
//	defer sub.Drain(shutdownCtx)
//
// # Delivery
//
// This first cut subscribes with core NATS, so it sees what `nats sub`
// sees: events published while the subscription is live, at most once, and
// [Delivery.Seq] is 0. Durable JetStream consumers that replay from a stream
// sequence or a time come later as further options; [Delivery] and the
// options are shaped so that they fit.
//
// All NATS subscriptions of one [Subscription] feed one buffer in the order
// the connection reads them, so events of one library reach the handler in
// the order the server sent them, even when the filter needs several NATS
// subscriptions (several types). With [Concurrency](n), n workers run the
// handler in parallel; the library id picks the worker, so events of one
// library are still handled one at a time, in order. When overlapping type
// patterns ("document.*" and "*.added") both match an event, it is handled
// once (in a queue group, once by the whole group).
//
// Backpressure: each worker has a bounded queue ([WorkerQueue]); while the
// queue of the event's worker is full, reading stops and the buffer fills;
// when the buffer ([PendingLimit]) is full, NATS drops further messages for
// this subscription (a slow consumer). Dropped messages are counted in
// [Stats.Dropped]; a consumer that must not miss events needs the durable
// consumers of a later version.
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
// Subscribe, the [HandlerTimeout] deadline if set, and is cancelled by
// [Subscription.Unsubscribe].
//
// [Subscription.Drain] stops receiving and waits until every queued event
// has been handled; [Subscription.Unsubscribe] stops at once and drops what
// is queued. Both are idempotent, safe to call concurrently, and return
// only after every goroutine the subscription started has exited, so a
// handler must not call them itself (it would wait for itself); it can
// start them in a goroutine. When the ctx given to Subscribe ends, the
// subscription drains by itself; [Subscription.Done] is closed once it has
// stopped.
package subscriber
