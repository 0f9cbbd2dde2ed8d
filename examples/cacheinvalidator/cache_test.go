package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEveryInstanceInvalidates(t *testing.T) {
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	caches := []*Cache{NewCache(), NewCache()}
	for _, c := range caches {
		sub, err := c.Watch(t.Context(), nc, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Drain(context.Background()) })
		c.Put("lib-a", "search:q", "results")
		c.Put("lib-b", "search:q", "results")
	}
	pub, err := publisher.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })

	// A search changes nothing: no invalidation. A document added to lib-a
	// drops lib-a in both instances and leaves lib-b.
	if _, err := pub.SearchPerformed(t.Context(), "lib-a", event.SearchPerformed{Query: "q", K: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.DocumentAdded(t.Context(), "lib-a", event.DocumentAdded{DocumentID: "d", Title: "t", NumChunks: 1}); err != nil {
		t.Fatal(err)
	}
	for i, c := range caches {
		testnats.Eventually(t, 10*time.Second, func() error {
			if _, ok := c.Get("lib-a", "search:q"); ok {
				return fmt.Errorf("instance %d still caches lib-a", i)
			}
			return nil
		})
		if _, ok := c.Get("lib-b", "search:q"); !ok {
			t.Errorf("instance %d dropped lib-b", i)
		}
	}
	// The search event came before the document event on the same
	// connection, so had it invalidated, the count would be 2.
	for i, c := range caches {
		c.mu.Lock()
		n := c.Invalidations
		c.mu.Unlock()
		if n != 1 {
			t.Errorf("instance %d invalidated %d times, want 1", i, n)
		}
	}
}
