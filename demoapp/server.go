package demoapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/subjects"
)

// maxBody bounds request bodies.
const maxBody = 4 << 20

// Server is the REST front of a [Repository].
type Server struct {
	repo *Repository
	log  *zap.Logger
	mux  *http.ServeMux
}

// NewServer returns the HTTP handler of repo. A nil log discards.
func NewServer(repo *Repository, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{repo: repo, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v1/libraries", s.createLibrary)
	s.mux.HandleFunc("GET /v1/libraries/{id}", s.getLibrary)
	s.mux.HandleFunc("DELETE /v1/libraries/{id}", s.deleteLibrary)
	s.mux.HandleFunc("POST /v1/libraries/{id}/documents", s.addDocument)
	s.mux.HandleFunc("DELETE /v1/libraries/{id}/documents/{doc_id}", s.deleteDocument)
	s.mux.HandleFunc("POST /v1/libraries/{id}/search", s.search)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) createLibrary(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name               string `json:"name"`
		IndexType          string `json:"index_type"`
		EmbeddingDimension int    `json:"embedding_dimension"`
	}
	if !decode(w, r, &req) {
		return
	}
	lib, err := s.repo.CreateLibrary(r.Context(), req.Name, req.IndexType, req.EmbeddingDimension)
	s.reply(w, http.StatusCreated, lib, err)
}

func (s *Server) getLibrary(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	lib, err := s.repo.GetLibrary(r.Context(), id)
	s.reply(w, http.StatusOK, lib, err)
}

func (s *Server) deleteLibrary(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	s.reply(w, http.StatusNoContent, nil, s.repo.DeleteLibrary(r.Context(), id))
}

func (s *Server) addDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	}
	if !decode(w, r, &req) {
		return
	}
	doc, err := s.repo.AddDocument(r.Context(), id, req.Title, req.Text)
	s.reply(w, http.StatusCreated, doc, err)
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	docID, ok := pathID(w, r, "doc_id")
	if !ok {
		return
	}
	s.reply(w, http.StatusNoContent, nil, s.repo.DeleteDocument(r.Context(), id, docID))
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var req struct {
		Query string `json:"query"`
		K     int    `json:"k"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.K == 0 {
		req.K = 10
	}
	results, err := s.repo.Search(r.Context(), id, req.Query, req.K)
	if err != nil && results != nil { // the search worked; only its event failed
		s.log.Warn("search event not published", zap.String("library_id", id), zap.Error(err))
		err = nil
	}
	if results == nil {
		results = []Result{}
	}
	s.reply(w, http.StatusOK, map[string]any{"results": results}, err)
}

// reply writes v with code, or the error with its status.
func (s *Server) reply(w http.ResponseWriter, code int, v any, err error) {
	switch {
	case err == nil && v == nil:
		w.WriteHeader(code)
	case err == nil:
		writeJSON(w, code, v)
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case errors.Is(err, ErrInvalid):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	default:
		s.log.Error("request failed", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
	}
}

// pathID reads a path value that must be a valid id (the subject grammar's
// library id: it becomes a subject token).
func pathID(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	id := r.PathValue(name)
	if err := subjects.ValidateLibraryID(id); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("%s: %v", name, err)})
		return "", false
	}
	return id, true
}

// decode reads one JSON object with no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data after the JSON object")
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
