// Package subjects owns the NATS subject grammar of arrwcdc. It is the only
// place that builds subject strings from outside input, so it is also what
// stops subject injection.
//
// A change event lives on
//
//	<prefix>.library.<library_id>.<entity>.<action>
//	events.library.550e8400-e29b-41d4-a716-446655440000.document.added
//
// where prefix is one or more tokens (default "events"), library_id is one
// token of [A-Za-z0-9_-]{1,128}, and the event type <entity>.<action> is two
// tokens of [a-z][a-z0-9_-]{0,63}. Every stored event is also republished by
// the EVENTS stream on the live subject "live.<subject>".
//
// Errors wrap one of the sentinels ([ErrInvalidLibraryID], [ErrInvalidType],
// [ErrInvalidPrefix], [ErrInvalidSubject], [ErrInvalidPattern]) and name the
// bad value, so callers can test them with errors.Is and show them as they are.
package subjects
