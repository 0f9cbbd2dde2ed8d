package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/event"
	"github.com/arrwdb/arrwcdc/subscriber"
)

// Durable is the consumer name every auditor shares.
const Durable = "audit-log"

// Auditor writes events into the audit_log table.
type Auditor struct{ db *sql.DB }

// NewAuditor creates the table if needed.
func NewAuditor(ctx context.Context, db *sql.DB) (*Auditor, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS audit_log (
		event_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, type TEXT NOT NULL,
		library_id TEXT NOT NULL, timestamp TEXT NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL)`)
	if err != nil {
		return nil, fmt.Errorf("audit table: %w", err)
	}
	return &Auditor{db: db}, nil
}

// Start consumes every event through the shared durable consumer.
func (a *Auditor) Start(ctx context.Context, js jetstream.JetStream, log *zap.Logger) (*subscriber.Subscription, error) {
	return subscriber.Consume(ctx, js, Durable, subscriber.Filter{}, a.Handle,
		subscriber.Concurrency(4), subscriber.MaxDeliver(5), subscriber.WithLogger(log))
}

// Handle writes one event. The event id is the primary key, so a
// redelivered event changes nothing: the write is idempotent.
func (a *Auditor) Handle(ctx context.Context, d subscriber.Delivery) error {
	data := string(d.Data)
	if data == "" {
		data = "{}"
	}
	_, err := a.db.ExecContext(ctx, `INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
		d.ID, d.Seq, d.Type, d.LibraryID, d.Timestamp.Format(event.TimeLayout), d.Source, data)
	return err
}
