package event

// Payloads of the built-in types, with the original event bus's field
// names. Decode one from an event with [Event.DataAs].

// LibraryCreated is the data of [TypeLibraryCreated].
type LibraryCreated struct {
	Name               string `json:"name"`
	IndexType          string `json:"index_type"`
	EmbeddingDimension int    `json:"embedding_dimension"`
}

// LibraryDeleted is the data of [TypeLibraryDeleted].
type LibraryDeleted struct {
	Name string `json:"name"`
}

// DocumentAdded is the data of [TypeDocumentAdded].
type DocumentAdded struct {
	DocumentID string `json:"document_id"`
	Title      string `json:"title"`
	NumChunks  int    `json:"num_chunks"`
}

// DocumentDeleted is the data of [TypeDocumentDeleted].
type DocumentDeleted struct {
	DocumentID string `json:"document_id"`
}

// SearchPerformed is the data of [TypeSearchPerformed].
type SearchPerformed struct {
	Query        string  `json:"query"`
	K            int     `json:"k"`
	ResultsCount int     `json:"results_count"`
	DurationMS   float64 `json:"duration_ms"`
}

// NewLibraryCreated returns a library.created event with a fresh id and time.
func NewLibraryCreated(libraryID string, d LibraryCreated) (Event, error) {
	return New(TypeLibraryCreated, libraryID, d)
}

// NewLibraryDeleted returns a library.deleted event with a fresh id and time.
func NewLibraryDeleted(libraryID string, d LibraryDeleted) (Event, error) {
	return New(TypeLibraryDeleted, libraryID, d)
}

// NewDocumentAdded returns a document.added event with a fresh id and time.
func NewDocumentAdded(libraryID string, d DocumentAdded) (Event, error) {
	return New(TypeDocumentAdded, libraryID, d)
}

// NewDocumentDeleted returns a document.deleted event with a fresh id and time.
func NewDocumentDeleted(libraryID string, d DocumentDeleted) (Event, error) {
	return New(TypeDocumentDeleted, libraryID, d)
}

// NewSearchPerformed returns a search.performed event with a fresh id and time.
func NewSearchPerformed(libraryID string, d SearchPerformed) (Event, error) {
	return New(TypeSearchPerformed, libraryID, d)
}
