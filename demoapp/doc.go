// Package demoapp is a small reference library service whose repository
// publishes change events the way a real application should.
//
// A [Repository] keeps libraries and documents (split into chunks) in
// SQLite. Every create, delete and add writes its change event into the
// transactional outbox in the same transaction as the change, so the event
// exists exactly when the change does and survives crashes and broker
// outages; an [outbox.Relay] publishes it after the commit. Searches change
// nothing, so their (noisy, optionally sampled) search.performed events go
// through [publisher.Hooks] directly.
//
// [Server] exposes the repository over REST/JSON:
//
//	POST   /v1/libraries                          {"name","index_type","embedding_dimension"}
//	GET    /v1/libraries/{id}
//	DELETE /v1/libraries/{id}
//	POST   /v1/libraries/{id}/documents           {"title","text"}
//	DELETE /v1/libraries/{id}/documents/{doc_id}
//	POST   /v1/libraries/{id}/search              {"query","k"}
//	GET    /healthz
//
// Each instance owns the libraries created through it (its own SQLite
// file). [App] wires repository, outbox, relay and HTTP server together for
// `arrwcdc demo-app`.
package demoapp
