package demoapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/arrwdb/arrwcdc/broker"
	"github.com/arrwdb/arrwcdc/demoapp"
	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/internal/testnats"
	"github.com/arrwdb/arrwcdc/publisher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	t   *testing.T
	app *demoapp.App
	js  jetstream.JetStream
}

func newHarness(t *testing.T, hooks publisher.HooksConfig) *harness {
	t.Helper()
	b := testnats.Broker(t)
	nc := testnats.Conn(t, b.ClientURL())
	app := demoapp.NewApp(demoapp.Config{
		HTTPListen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "app.db"), Source: "demo-1", Hooks: hooks,
	}, nc, zaptest.NewLogger(t))
	if err := app.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Shutdown(context.Background()) })
	return &harness{t: t, app: app, js: testnats.JetStream(t, nc)}
}

// do sends a JSON request and decodes the reply into out (if not nil).
func (h *harness) do(method, path, body string, want int, out any) {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(h.t.Context(), method, h.app.URL()+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// events waits until the stream holds n events and returns them in order.
func (h *harness) events(n int) []event.Event {
	h.t.Helper()
	s, err := h.js.Stream(h.t.Context(), broker.StreamName)
	if err != nil {
		h.t.Fatal(err)
	}
	testnats.Eventually(h.t, 20*time.Second, func() error {
		info, err := s.Info(h.t.Context())
		if err != nil {
			return err
		}
		if info.State.Msgs != uint64(n) {
			return fmt.Errorf("stream holds %d events, want %d", info.State.Msgs, n)
		}
		return nil
	})
	var evs []event.Event
	for seq := uint64(1); seq <= uint64(n); seq++ {
		m, err := s.GetMsg(h.t.Context(), seq)
		if err != nil {
			h.t.Fatal(err)
		}
		ev, err := event.Decode(m.Data, 0)
		if err != nil {
			h.t.Fatal(err)
		}
		if err := ev.CheckSubject(m.Subject); err != nil {
			h.t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestRepositoryEventsFlowThroughOutbox(t *testing.T) {
	h := newHarness(t, publisher.HooksConfig{})
	var lib demoapp.Library
	h.do("POST", "/v1/libraries", `{"name":"Papers","index_type":"hnsw","embedding_dimension":1024}`, 201, &lib)
	var doc demoapp.Document
	text := strings.Repeat("vector databases store embeddings for similarity search ", 10) // 70 words
	h.do("POST", "/v1/libraries/"+lib.ID+"/documents", fmt.Sprintf(`{"title":"Intro","text":%q}`, text), 201, &doc)
	if doc.NumChunks != 2 {
		t.Fatalf("num_chunks = %d, want 2", doc.NumChunks)
	}
	var found struct{ Results []demoapp.Result }
	h.do("POST", "/v1/libraries/"+lib.ID+"/search", `{"query":"similarity search","k":5}`, 200, &found)
	if len(found.Results) != 2 || found.Results[0].Score != 1 {
		t.Fatalf("search results = %+v", found.Results)
	}
	h.do("DELETE", "/v1/libraries/"+lib.ID+"/documents/"+doc.ID, "", 204, nil)
	h.do("DELETE", "/v1/libraries/"+lib.ID, "", 204, nil)

	evs := h.events(5)
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.LibraryID != lib.ID || ev.Source != "demo-1" {
			t.Errorf("event %+v: wrong library or source", ev)
		}
	}
	// The search event is published directly, the others through the relay,
	// so only the outbox events' relative order is fixed.
	outboxed := slices.DeleteFunc(slices.Clone(types), func(s string) bool { return s == event.TypeSearchPerformed })
	if want := []string{event.TypeLibraryCreated, event.TypeDocumentAdded, event.TypeDocumentDeleted, event.TypeLibraryDeleted}; !slices.Equal(outboxed, want) {
		t.Fatalf("types = %v, want %v plus one search", types, want)
	}
	for _, ev := range evs {
		switch ev.Type {
		case event.TypeLibraryCreated:
			var d event.LibraryCreated
			if err := ev.DataAs(&d); err != nil || d != (event.LibraryCreated{Name: "Papers", IndexType: "hnsw", EmbeddingDimension: 1024}) {
				t.Errorf("library.created data %+v, %v", d, err)
			}
		case event.TypeDocumentAdded:
			var d event.DocumentAdded
			if err := ev.DataAs(&d); err != nil || d != (event.DocumentAdded{DocumentID: doc.ID, Title: "Intro", NumChunks: 2}) {
				t.Errorf("document.added data %+v, %v", d, err)
			}
		case event.TypeSearchPerformed:
			var d event.SearchPerformed
			if err := ev.DataAs(&d); err != nil || d.Query != "similarity search" || d.K != 5 || d.ResultsCount != 2 {
				t.Errorf("search.performed data %+v, %v", d, err)
			}
		}
	}
	// Rows go only after their ack, so the stream may hold an event a
	// moment before its row is deleted.
	testnats.Eventually(t, 10*time.Second, func() error {
		st, err := h.app.Outbox().Stats(t.Context())
		if err == nil && (st.Depth != 0 || st.Relayed != 4) {
			err = fmt.Errorf("outbox %+v: want empty after 4 relayed", st)
		}
		return err
	})
}

func TestFailedChangesPublishNothing(t *testing.T) {
	h := newHarness(t, publisher.HooksConfig{DisableSearch: true})
	var lib demoapp.Library
	h.do("POST", "/v1/libraries", `{"name":"L"}`, 201, &lib)
	missing := "00000000-0000-0000-0000-000000000000"
	h.do("POST", "/v1/libraries/"+missing+"/documents", `{"title":"t","text":"x"}`, 404, nil)
	h.do("DELETE", "/v1/libraries/"+missing, "", 404, nil)
	h.do("DELETE", "/v1/libraries/"+lib.ID+"/documents/"+missing, "", 404, nil)
	h.do("POST", "/v1/libraries/"+lib.ID+"/documents", `{"title":"t","text":"   "}`, 400, nil)
	h.do("POST", "/v1/libraries", `{"name":""}`, 400, nil)
	h.do("POST", "/v1/libraries", `{"name":"x","colour":"red"}`, 400, nil)
	h.do("POST", "/v1/libraries", `{"name":"x"} {}`, 400, nil)
	h.do("POST", "/v1/libraries", `not json`, 400, nil)
	h.do("POST", "/v1/libraries/a.b/documents", `{"title":"t","text":"x"}`, 400, nil)
	h.do("POST", "/v1/libraries/"+lib.ID+"/search", `{"query":"x","k":1000}`, 400, nil)
	h.do("GET", "/v1/nothing", "", 404, nil)
	// A search with search events off publishes nothing either.
	h.do("POST", "/v1/libraries/"+lib.ID+"/search", `{"query":"x"}`, 200, nil)

	evs := h.events(1)
	if evs[0].Type != event.TypeLibraryCreated {
		t.Fatalf("only event = %s", evs[0].Type)
	}
	var got demoapp.Library
	h.do("GET", "/v1/libraries/"+lib.ID, "", 200, &got)
	if got.Documents != 0 || got.Name != "L" || got.IndexType != "flat" {
		t.Fatalf("library = %+v", got)
	}
}

func TestChunk(t *testing.T) {
	if got := demoapp.Chunk("a b c d e", 2); !slices.Equal(got, []string{"a b", "c d", "e"}) {
		t.Fatalf("Chunk = %q", got)
	}
	if got := demoapp.Chunk(" \n\t", 2); got != nil {
		t.Fatalf("Chunk(blank) = %q", got)
	}
}
