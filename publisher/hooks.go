package publisher

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/arrwdb/arrwcdc/event"
)

// Hooks is what a repository calls after each change, so that it needs to
// know nothing about NATS. Each method publishes one event and returns
// after it is acknowledged, or returns why not: the repository decides
// whether a failed event fails the change. Implementations must be safe
// for concurrent use. Use [NewHooks] for a bus, [NopHooks] for none.
type Hooks interface {
	LibraryCreated(ctx context.Context, libraryID string, d event.LibraryCreated) error
	LibraryDeleted(ctx context.Context, libraryID string, d event.LibraryDeleted) error
	DocumentAdded(ctx context.Context, libraryID string, d event.DocumentAdded) error
	DocumentDeleted(ctx context.Context, libraryID string, d event.DocumentDeleted) error
	SearchPerformed(ctx context.Context, libraryID string, d event.SearchPerformed) error
}

// HooksConfig tunes the [Hooks] of [NewHooks]. The zero value publishes
// every event, every search included.
type HooksConfig struct {
	// DisableSearch turns search.performed events off: SearchPerformed
	// returns nil without publishing.
	DisableSearch bool
	// SearchSampleRate is the share of searches published, from 0 to 1,
	// each search drawn independently: 0.1 publishes about one in ten.
	// 0 means 1 (every search); to publish none, set DisableSearch.
	SearchSampleRate float64
}

// NewHooks returns [Hooks] that publish through p with
// [Publisher.Publish] semantics: each call returns after the ack, with
// the publish's error otherwise ([ErrClosed] after p is closed). It
// returns an error wrapping [ErrInvalidOption] if p is nil or
// cfg.SearchSampleRate is outside [0, 1].
func NewHooks(p *Publisher, cfg HooksConfig) (Hooks, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: NewHooks: nil *Publisher", ErrInvalidOption)
	}
	rate := cfg.SearchSampleRate
	if math.IsNaN(rate) || rate < 0 || rate > 1 {
		return nil, fmt.Errorf("%w: SearchSampleRate: %v: want 0 to 1", ErrInvalidOption, rate)
	}
	if rate == 0 {
		rate = 1
	}
	if cfg.DisableSearch {
		rate = 0
	}
	return &hooks{p: p, searchRate: rate}, nil
}

type hooks struct {
	p          *Publisher
	searchRate float64 // 0: none, 1: all
}

func (h *hooks) LibraryCreated(ctx context.Context, libraryID string, d event.LibraryCreated) error {
	_, err := h.p.LibraryCreated(ctx, libraryID, d)
	return err
}

func (h *hooks) LibraryDeleted(ctx context.Context, libraryID string, d event.LibraryDeleted) error {
	_, err := h.p.LibraryDeleted(ctx, libraryID, d)
	return err
}

func (h *hooks) DocumentAdded(ctx context.Context, libraryID string, d event.DocumentAdded) error {
	_, err := h.p.DocumentAdded(ctx, libraryID, d)
	return err
}

func (h *hooks) DocumentDeleted(ctx context.Context, libraryID string, d event.DocumentDeleted) error {
	_, err := h.p.DocumentDeleted(ctx, libraryID, d)
	return err
}

// SearchPerformed publishes the search when it is sampled; skipped searches
// return nil without being validated.
func (h *hooks) SearchPerformed(ctx context.Context, libraryID string, d event.SearchPerformed) error {
	if h.searchRate < 1 && rand.Float64() >= h.searchRate { // rand.Float64 is in [0, 1): rate 0 never publishes
		return nil
	}
	_, err := h.p.SearchPerformed(ctx, libraryID, d)
	return err
}

// NopHooks is a [Hooks] that does nothing and returns nil, for
// repositories that run without a bus.
type NopHooks struct{}

var (
	_ Hooks = NopHooks{}
	_ Hooks = (*hooks)(nil)
)

func (NopHooks) LibraryCreated(context.Context, string, event.LibraryCreated) error   { return nil }
func (NopHooks) LibraryDeleted(context.Context, string, event.LibraryDeleted) error   { return nil }
func (NopHooks) DocumentAdded(context.Context, string, event.DocumentAdded) error     { return nil }
func (NopHooks) DocumentDeleted(context.Context, string, event.DocumentDeleted) error { return nil }
func (NopHooks) SearchPerformed(context.Context, string, event.SearchPerformed) error { return nil }
