package demoapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/publisher"
)

// Errors of the repository.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid request")
)

// ChunkWords is how many words one chunk of a document holds.
const ChunkWords = 40

// TxEvents runs a change and its event in one transaction; *outbox.Outbox
// implements it (its Tx also takes turns with the relay for SQLite's write
// lock, so a busy app cannot starve the relay).
type TxEvents interface {
	Tx(ctx context.Context, fn func(tx *sql.Tx) error) error
	Add(ctx context.Context, tx *sql.Tx, ev event.Event) (string, error)
}

// Library is a collection of documents.
type Library struct {
	ID                 string    `json:"id"`
	Name               string    `json:"name"`
	IndexType          string    `json:"index_type"`
	EmbeddingDimension int       `json:"embedding_dimension"`
	CreatedAt          time.Time `json:"created_at"`
	Documents          int       `json:"documents"`
}

// Document is a text split into chunks.
type Document struct {
	ID        string `json:"id"`
	LibraryID string `json:"library_id"`
	Title     string `json:"title"`
	NumChunks int    `json:"num_chunks"`
}

// Result is one chunk matching a search.
type Result struct {
	DocumentID string  `json:"document_id"`
	Title      string  `json:"title"`
	Chunk      int     `json:"chunk"`
	Score      float64 `json:"score"`
	Text       string  `json:"text"`
}

// Repository stores libraries and documents and emits their events.
type Repository struct {
	db     *sql.DB
	events TxEvents
	hooks  publisher.Hooks
}

// NewRepository creates the tables if needed. events receives the change
// events inside each change's transaction; hooks receives search events
// (publisher.NopHooks{} for none).
func NewRepository(ctx context.Context, db *sql.DB, events TxEvents, hooks publisher.Hooks) (*Repository, error) {
	if hooks == nil {
		hooks = publisher.NopHooks{}
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS libraries (
			id TEXT PRIMARY KEY, name TEXT NOT NULL, index_type TEXT NOT NULL,
			embedding_dimension INTEGER NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS documents (
			id TEXT PRIMARY KEY, library_id TEXT NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
			title TEXT NOT NULL, num_chunks INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS chunks (
			document_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
			idx INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (document_id, idx))`,
		`CREATE INDEX IF NOT EXISTS documents_library ON documents(library_id)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("demoapp: migrate: %w", err)
		}
	}
	return &Repository{db: db, events: events, hooks: hooks}, nil
}

// CreateLibrary stores a new library and its library.created event.
func (r *Repository) CreateLibrary(ctx context.Context, name, indexType string, dim int) (Library, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len(name) > 200:
		return Library{}, fmt.Errorf("%w: name: want 1 to 200 characters", ErrInvalid)
	case dim < 0 || dim > 65536:
		return Library{}, fmt.Errorf("%w: embedding_dimension: %d out of 0..65536", ErrInvalid, dim)
	}
	if indexType == "" {
		indexType = "flat"
	}
	lib := Library{ID: uuid.NewString(), Name: name, IndexType: indexType, EmbeddingDimension: dim, CreatedAt: event.Now()}
	ev, err := event.NewLibraryCreated(lib.ID, event.LibraryCreated{Name: name, IndexType: indexType, EmbeddingDimension: dim})
	if err != nil {
		return Library{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	err = r.inTx(ctx, ev, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO libraries VALUES (?, ?, ?, ?, ?)`,
			lib.ID, lib.Name, lib.IndexType, lib.EmbeddingDimension, lib.CreatedAt.Format(time.RFC3339Nano))
		return err
	})
	return lib, err
}

// GetLibrary returns one library with its document count.
func (r *Repository) GetLibrary(ctx context.Context, id string) (Library, error) {
	var lib Library
	var created string
	err := r.db.QueryRowContext(ctx, `SELECT l.id, l.name, l.index_type, l.embedding_dimension, l.created_at,
		(SELECT COUNT(*) FROM documents d WHERE d.library_id = l.id) FROM libraries l WHERE l.id = ?`, id).
		Scan(&lib.ID, &lib.Name, &lib.IndexType, &lib.EmbeddingDimension, &created, &lib.Documents)
	if errors.Is(err, sql.ErrNoRows) {
		return Library{}, fmt.Errorf("library %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Library{}, err
	}
	lib.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
	return lib, nil
}

// DeleteLibrary removes a library, its documents and chunks, and records
// library.deleted.
func (r *Repository) DeleteLibrary(ctx context.Context, id string) error {
	lib, err := r.GetLibrary(ctx, id)
	if err != nil {
		return err
	}
	ev, err := event.NewLibraryDeleted(id, event.LibraryDeleted{Name: lib.Name})
	if err != nil {
		return err
	}
	return r.inTx(ctx, ev, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE document_id IN (SELECT id FROM documents WHERE library_id = ?)`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM documents WHERE library_id = ?`, id); err != nil {
			return err
		}
		return deleted(tx.ExecContext(ctx, `DELETE FROM libraries WHERE id = ?`, id))
	})
}

// AddDocument splits text into chunks of [ChunkWords] words, stores them
// and records document.added.
func (r *Repository) AddDocument(ctx context.Context, libraryID, title, text string) (Document, error) {
	title = strings.TrimSpace(title)
	if title == "" || len(title) > 500 {
		return Document{}, fmt.Errorf("%w: title: want 1 to 500 characters", ErrInvalid)
	}
	chunks := Chunk(text, ChunkWords)
	if len(chunks) == 0 {
		return Document{}, fmt.Errorf("%w: text: empty", ErrInvalid)
	}
	if _, err := r.GetLibrary(ctx, libraryID); err != nil {
		return Document{}, err
	}
	doc := Document{ID: uuid.NewString(), LibraryID: libraryID, Title: title, NumChunks: len(chunks)}
	ev, err := event.NewDocumentAdded(libraryID, event.DocumentAdded{DocumentID: doc.ID, Title: title, NumChunks: len(chunks)})
	if err != nil {
		return Document{}, err
	}
	err = r.inTx(ctx, ev, func(tx *sql.Tx) error {
		// The library may have gone since the check above: the insert's
		// subquery makes that a not-found inside the transaction.
		if err := deleted(tx.ExecContext(ctx, `INSERT INTO documents SELECT ?, id, ?, ? FROM libraries WHERE id = ?`,
			doc.ID, title, len(chunks), libraryID)); err != nil {
			return fmt.Errorf("library %s: %w", libraryID, err)
		}
		for i, c := range chunks {
			if _, err := tx.ExecContext(ctx, `INSERT INTO chunks VALUES (?, ?, ?)`, doc.ID, i, c); err != nil {
				return err
			}
		}
		return nil
	})
	return doc, err
}

// DeleteDocument removes a document and records document.deleted.
func (r *Repository) DeleteDocument(ctx context.Context, libraryID, docID string) error {
	ev, err := event.NewDocumentDeleted(libraryID, event.DocumentDeleted{DocumentID: docID})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return r.inTx(ctx, ev, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE document_id IN
			(SELECT id FROM documents WHERE id = ? AND library_id = ?)`, docID, libraryID); err != nil {
			return err
		}
		if err := deleted(tx.ExecContext(ctx, `DELETE FROM documents WHERE id = ? AND library_id = ?`, docID, libraryID)); err != nil {
			return fmt.Errorf("document %s in library %s: %w", docID, libraryID, err)
		}
		return nil
	})
}

// Search scores every chunk of the library by the share of query terms it
// contains and returns the best k (a naive stand-in for vector search),
// then emits search.performed through the hooks.
func (r *Repository) Search(ctx context.Context, libraryID, query string, k int) ([]Result, error) {
	if k <= 0 || k > 100 {
		return nil, fmt.Errorf("%w: k: %d out of 1..100", ErrInvalid, k)
	}
	terms := words(strings.ToLower(query))
	if len(terms) == 0 {
		return nil, fmt.Errorf("%w: query: empty", ErrInvalid)
	}
	if _, err := r.GetLibrary(ctx, libraryID); err != nil {
		return nil, err
	}
	start := time.Now()
	rows, err := r.db.QueryContext(ctx, `SELECT d.id, d.title, c.idx, c.text FROM chunks c
		JOIN documents d ON d.id = c.document_id WHERE d.library_id = ?`, libraryID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var results []Result
	for rows.Next() {
		var res Result
		if err := rows.Scan(&res.DocumentID, &res.Title, &res.Chunk, &res.Text); err != nil {
			return nil, err
		}
		if res.Score = score(terms, res.Text); res.Score > 0 {
			results = append(results, res)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Score > results[j].Score })
	results = results[:min(k, len(results))]
	err = r.hooks.SearchPerformed(ctx, libraryID, event.SearchPerformed{
		Query: query, K: k, ResultsCount: len(results),
		DurationMS: float64(time.Since(start).Microseconds()) / 1000,
	})
	// The search itself succeeded: a lost search event is not the caller's
	// failure (search events are sampled analytics), so it is returned
	// beside the results for the caller to log.
	return results, err
}

// inTx runs change and adds ev to the outbox in one transaction.
func (r *Repository) inTx(ctx context.Context, ev event.Event, change func(*sql.Tx) error) error {
	return r.events.Tx(ctx, func(tx *sql.Tx) error {
		if err := change(tx); err != nil {
			return err
		}
		if _, err := r.events.Add(ctx, tx, ev); err != nil {
			return fmt.Errorf("record %s: %w", ev.Type, err)
		}
		return nil
	})
}

// deleted turns "no row affected" into ErrNotFound.
func deleted(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Chunk splits text into chunks of at most n words.
func Chunk(text string, n int) []string {
	ws := strings.Fields(text)
	var out []string
	for len(ws) > 0 {
		m := min(n, len(ws))
		out = append(out, strings.Join(ws[:m], " "))
		ws = ws[m:]
	}
	return out
}

func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// score is the share of distinct query terms found in text.
func score(terms []string, text string) float64 {
	have := map[string]bool{}
	for _, w := range words(strings.ToLower(text)) {
		have[w] = true
	}
	seen, hits := map[string]bool{}, 0
	for _, t := range terms {
		if seen[t] {
			continue
		}
		seen[t] = true
		if have[t] {
			hits++
		}
	}
	return float64(hits) / float64(len(seen))
}
