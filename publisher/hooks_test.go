package publisher_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
	"github.com/arrwdb/arrwcdc/subjects"
)

func TestHooksPublishEachType(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t, publisher.WithSource("app-1"))
	h, err := publisher.NewHooks(p, publisher.HooksConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	tests := []struct {
		typ  string
		call func() error
		want any
		got  func(*event.Event) (any, error)
	}{
		{
			event.TypeLibraryCreated,
			func() error {
				return h.LibraryCreated(ctx, libID, event.LibraryCreated{Name: "L", IndexType: "flat", EmbeddingDimension: 8})
			},
			event.LibraryCreated{Name: "L", IndexType: "flat", EmbeddingDimension: 8},
			decodeAs[event.LibraryCreated],
		},
		{
			event.TypeDocumentAdded,
			func() error {
				return h.DocumentAdded(ctx, libID, event.DocumentAdded{DocumentID: docID, Title: "T", NumChunks: 2})
			},
			event.DocumentAdded{DocumentID: docID, Title: "T", NumChunks: 2},
			decodeAs[event.DocumentAdded],
		},
		{
			event.TypeSearchPerformed,
			func() error {
				return h.SearchPerformed(ctx, libID, event.SearchPerformed{Query: "ml", K: 5, ResultsCount: 4, DurationMS: 1.25})
			},
			event.SearchPerformed{Query: "ml", K: 5, ResultsCount: 4, DurationMS: 1.25},
			decodeAs[event.SearchPerformed],
		},
		{
			event.TypeDocumentDeleted,
			func() error { return h.DocumentDeleted(ctx, libID, event.DocumentDeleted{DocumentID: docID}) },
			event.DocumentDeleted{DocumentID: docID},
			decodeAs[event.DocumentDeleted],
		},
		{
			event.TypeLibraryDeleted,
			func() error { return h.LibraryDeleted(ctx, libID, event.LibraryDeleted{Name: "L"}) },
			event.LibraryDeleted{Name: "L"},
			decodeAs[event.LibraryDeleted],
		},
	}
	for i, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			if err := tt.call(); err != nil {
				t.Fatal(err)
			}
			m := f.get(t, uint64(i+1))
			ev, err := event.Decode(m.Data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.typ || ev.LibraryID != libID || ev.Source != "app-1" {
				t.Errorf("stored %+v", ev)
			}
			if err := ev.CheckSubject(m.Subject); err != nil {
				t.Error(err)
			}
			got, err := tt.got(&ev)
			if err != nil || got != tt.want {
				t.Errorf("data = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}

	if err := h.DocumentAdded(ctx, "lib 1", event.DocumentAdded{}); !errors.Is(err, subjects.ErrInvalidLibraryID) {
		t.Errorf("bad library id: %v", err)
	}
	if err := h.SearchPerformed(ctx, libID, event.SearchPerformed{DurationMS: math.NaN()}); !errors.Is(err, event.ErrInvalid) {
		t.Errorf("NaN duration: %v, want ErrInvalid", err)
	}
}

func TestHooksSearchDisabled(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	h, err := publisher.NewHooks(p, publisher.HooksConfig{DisableSearch: true, SearchSampleRate: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := h.SearchPerformed(t.Context(), libID, event.SearchPerformed{Query: "q"}); err != nil {
			t.Fatal(err)
		}
	}
	// Other hooks still publish.
	if err := h.DocumentDeleted(t.Context(), libID, event.DocumentDeleted{DocumentID: docID}); err != nil {
		t.Fatal(err)
	}
	if n := f.msgs(t); n != 1 {
		t.Errorf("stream holds %d, want only the document.deleted", n)
	}
	if s := p.Stats(); s.Published != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestHooksSearchSampled(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	h, err := publisher.NewHooks(p, publisher.HooksConfig{SearchSampleRate: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	const searches, workers = 2000, 8
	var wg sync.WaitGroup
	errs := make(chan error, searches)
	for range workers {
		wg.Go(func() {
			for range searches / workers {
				if err := h.SearchPerformed(t.Context(), libID, event.SearchPerformed{Query: "q", K: 1}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Binomial(2000, 0.5): mean 1000, standard deviation about 22.
	n := f.msgs(t)
	if n < 800 || n > 1200 {
		t.Errorf("%d of %d searches published at rate 0.5", n, searches)
	}
	if s := p.Stats(); s.Published != n {
		t.Errorf("stats = %+v, stream %d", s, n)
	}
}

func TestHooksSearchRateOne(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	for _, rate := range []float64{0, 1} { // 0 means every search
		h, err := publisher.NewHooks(p, publisher.HooksConfig{SearchSampleRate: rate})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := h.SearchPerformed(t.Context(), libID, event.SearchPerformed{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := f.msgs(t); n != 40 {
		t.Errorf("stream holds %d, want every one of 40 searches", n)
	}
}

func TestNewHooksInvalid(t *testing.T) {
	f := setup(t)
	p := f.newPublisher(t)
	for _, rate := range []float64{-0.1, 1.0001, 2, math.NaN(), math.Inf(1), math.Inf(-1)} {
		h, err := publisher.NewHooks(p, publisher.HooksConfig{SearchSampleRate: rate})
		if !errors.Is(err, publisher.ErrInvalidOption) || h != nil {
			t.Errorf("rate %v: %v, %v; want ErrInvalidOption", rate, h, err)
		}
	}
	if _, err := publisher.NewHooks(nil, publisher.HooksConfig{}); !errors.Is(err, publisher.ErrInvalidOption) {
		t.Errorf("nil publisher: %v, want ErrInvalidOption", err)
	}
}

func TestHooksAfterClose(t *testing.T) {
	f := setup(t)
	p, err := publisher.New(f.nc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := publisher.NewHooks(p, publisher.HooksConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.LibraryCreated(t.Context(), libID, event.LibraryCreated{Name: "L"}); !errors.Is(err, publisher.ErrClosed) {
		t.Errorf("hook after Close = %v, want ErrClosed", err)
	}
}

func TestNopHooks(t *testing.T) {
	var h publisher.Hooks = publisher.NopHooks{}
	ctx := context.Background()
	for _, err := range []error{
		h.LibraryCreated(ctx, "a.b", event.LibraryCreated{}),
		h.LibraryDeleted(ctx, libID, event.LibraryDeleted{}),
		h.DocumentAdded(ctx, libID, event.DocumentAdded{}),
		h.DocumentDeleted(ctx, libID, event.DocumentDeleted{}),
		h.SearchPerformed(ctx, libID, event.SearchPerformed{}),
	} {
		if err != nil {
			t.Error(err)
		}
	}
}
