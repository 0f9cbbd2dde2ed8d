// Package event defines the change-event envelope of arrwcdc: its fields,
// the built-in types and their data, validation, and the JSON wire format.
//
// An [Event] encodes to one JSON object:
//
//	{"id":"0193f1d2-…","type":"document.added","library_id":"550e8400-…",
//	 "timestamp":"2025-10-27T06:01:00.000000Z","source":"app-1",
//	 "data":{"document_id":"a1b2…","title":"My Document","num_chunks":3}}
//
// [Decode] also accepts the zone-less timestamp of the original Python event
// bus ("2025-10-27T06:01:00.000000", read as UTC), never panics, and returns
// errors wrapping [ErrInvalid] or [ErrTooLarge]. [Event.Data] is kept as raw
// JSON so custom event types pass through byte for byte; the built-in types
// have typed payloads ([DocumentAdded], …) and constructors.
package event
