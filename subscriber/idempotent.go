package subscriber

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store remembers which events a handler has acted on, for [Idempotent].
// Implementations must be safe for concurrent use.
type Store interface {
	// Seen reports whether Mark was called for id (and the store still
	// remembers it).
	Seen(ctx context.Context, id string) (bool, error)
	// Mark records that the event id was acted on.
	Mark(ctx context.Context, id string) error
}

// Idempotent returns a handler that runs h at most once per event id, as
// far as store remembers: an event whose id the store has seen is skipped
// (the returned handler returns nil, so a durable consumer acknowledges
// it); otherwise h runs, and its success is marked in store. Redeliveries
// of [Consume] (a retry, an ack that was lost, a restart) and events that
// a publisher sent twice under one id beyond the stream's duplicate window
// reach h once.
//
// The key is the event id; an event without one is keyed by its stream
// sequence ("seq:42") when known, and otherwise always runs h. Calls with
// the same key are serialised within the returned handler, so two
// deliveries of one event at the same moment (two subscriptions sharing
// the handler) run h once; across processes, that is up to the store.
//
// Errors: an error of h is returned as is, and the event is not marked
// (so it is retried). An error of Seen or Mark is returned wrapped; after
// a failed Mark, h has acted but the event is retried, and h runs again.
// Where acting twice must never happen, mark in the same transaction as
// the action instead (as the SQLite store of the examples does).
func Idempotent(store Store, h Handler) Handler {
	if store == nil || h == nil {
		panic("subscriber: Idempotent needs a Store and a Handler")
	}
	var locks keyLocks
	return func(ctx context.Context, d Delivery) error {
		key := d.ID
		if key == "" {
			if d.Seq == 0 {
				return h(ctx, d)
			}
			key = "seq:" + strconv.FormatUint(d.Seq, 10)
		}
		unlock, err := locks.lock(ctx, key)
		if err != nil {
			return err
		}
		defer unlock()
		seen, err := store.Seen(ctx, key)
		if err != nil {
			return fmt.Errorf("subscriber: idempotency store: seen %s: %w", key, err)
		}
		if seen {
			return nil
		}
		if err := h(ctx, d); err != nil {
			return err
		}
		if err := store.Mark(ctx, key); err != nil {
			return fmt.Errorf("subscriber: idempotency store: mark %s: %w", key, err)
		}
		return nil
	}
}

// keyLocks is a set of per-key mutexes that waits with a context.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

func (k *keyLocks) lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// DefaultMemoryStoreSize is how many ids a [MemoryStore] remembers unless
// told otherwise.
const DefaultMemoryStoreSize = 100_000

// MemoryStore is a [Store] in memory, bounded in size and optionally in
// time: it remembers the ids marked last, forgetting the least recently
// marked beyond its size and any older than its TTL. It forgets all on
// restart; use a persistent store where a restart must not repeat an
// action. Safe for concurrent use.
type MemoryStore struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List // of *memEntry, most recently marked first
	ids   map[string]*list.Element
	now   func() time.Time
}

type memEntry struct {
	id     string
	marked time.Time
}

// NewMemoryStore returns a store that remembers up to size ids (size <= 0
// means [DefaultMemoryStoreSize]), each for ttl after it was marked (ttl
// <= 0 means until pushed out by newer ones).
func NewMemoryStore(size int, ttl time.Duration) *MemoryStore {
	if size <= 0 {
		size = DefaultMemoryStoreSize
	}
	return &MemoryStore{size: size, ttl: max(ttl, 0), order: list.New(), ids: map[string]*list.Element{}, now: time.Now}
}

// Seen reports whether id was marked and is still remembered. It never
// fails.
func (m *MemoryStore) Seen(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.ids[id]
	if !ok {
		return false, nil
	}
	if m.expired(e.Value.(*memEntry), m.now()) {
		m.order.Remove(e)
		delete(m.ids, id)
		return false, nil
	}
	return true, nil
}

// Mark remembers id, as the most recently marked. It never fails.
func (m *MemoryStore) Mark(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e, ok := m.ids[id]; ok {
		e.Value.(*memEntry).marked = now
		m.order.MoveToFront(e)
	} else {
		// A copy: an event's id points into its payload (or its decoded
		// strings), which it would keep alive for as long as it is
		// remembered.
		id = strings.Clone(id)
		m.ids[id] = m.order.PushFront(&memEntry{id: id, marked: now})
	}
	for m.order.Len() > m.size || (m.order.Len() > 0 && m.expired(m.order.Back().Value.(*memEntry), now)) {
		old := m.order.Remove(m.order.Back()).(*memEntry)
		delete(m.ids, old.id)
	}
	return nil
}

// Len returns how many ids the store remembers (expired ones included
// until they are noticed).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *MemoryStore) expired(e *memEntry, now time.Time) bool {
	return m.ttl > 0 && now.Sub(e.marked) >= m.ttl
}
