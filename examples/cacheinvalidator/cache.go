package main

import (
	"context"
	"sync"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// Cache is a per-library key/value cache.
type Cache struct {
	mu   sync.Mutex
	libs map[string]map[string]string
	// Invalidations counts libraries dropped, for tests and metrics.
	Invalidations int
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{libs: map[string]map[string]string{}} }

// Put caches value under key for a library.
func (c *Cache) Put(libraryID, key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.libs[libraryID] == nil {
		c.libs[libraryID] = map[string]string{}
	}
	c.libs[libraryID][key] = value
}

// Get returns a cached value.
func (c *Cache) Get(libraryID, key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.libs[libraryID][key]
	return v, ok
}

// Invalidate drops every entry of a library.
func (c *Cache) Invalidate(libraryID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.libs[libraryID]; ok {
		delete(c.libs, libraryID)
		c.Invalidations++
	}
}

// Watch subscribes every instance (no queue group) to the changes that
// make a library's cached results stale.
func (c *Cache) Watch(ctx context.Context, nc *nats.Conn, log *zap.Logger) (*subscriber.Subscription, error) {
	f := subscriber.Filter{Types: []string{event.TypeDocumentAdded, event.TypeDocumentDeleted, event.TypeLibraryDeleted}}
	return subscriber.Subscribe(ctx, nc, f, func(_ context.Context, d subscriber.Delivery) error {
		c.Invalidate(d.LibraryID)
		return nil
	}, subscriber.WithLogger(log))
}
