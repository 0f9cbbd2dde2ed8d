package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/arrwdb/arrwcdc/subjects"
)

// StreamSpec returns the EVENTS stream's configuration for prefix and sc
// (defaults filled in): file storage, every subject under the prefix, the
// dedup window, limits by age and bytes, and RePublish of each stored event
// to "live.<subject>" with its stream sequence (DESIGN §7).
func StreamSpec(prefix string, sc StreamConfig) jetstream.StreamConfig {
	sc = Config{Stream: sc}.WithDefaults().Stream
	maxBytes := sc.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	all := subjects.All(prefix)
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "arrwcdc change events",
		Subjects:    []string{all},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Replicas:    sc.Replicas,
		MaxAge:      sc.MaxAge,
		MaxBytes:    maxBytes,
		MaxMsgs:     -1,
		Duplicates:  sc.Duplicates,
		AllowDirect: true,
		RePublish: &jetstream.RePublish{
			Source:      all,
			Destination: subjects.Live(all),
		},
	}
}

// EnsureStream creates the EVENTS stream, or updates it in place when its
// configuration differs from [StreamSpec]; it never deletes or recreates a
// stream. It retries while JetStream is not yet available (a cluster still
// electing its meta leader) or another node is creating the stream at the
// same moment, until ctx ends.
func EnsureStream(ctx context.Context, js jetstream.JetStream, prefix string, sc StreamConfig) (jetstream.Stream, error) {
	want := StreamSpec(prefix, sc)
	var lastErr error
	for {
		// Without a meta leader the API does not answer at all: bound each
		// attempt so one silent request cannot use up ctx.
		attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.CreateOrUpdateStream(attempt, want)
		cancel()
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !retryable(err) {
			return nil, fmt.Errorf("stream %s: %w", StreamName, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %s: %w (last error: %w)", StreamName, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamNameInUse, jetstream.JSErrCodeJetStreamNotEnabled,
			jetstream.JSErrCodeStreamNotFound:
			return true
		}
		// 10008: JetStream system temporarily unavailable; 10074/10005:
		// insufficient resources while peers join.
		return apiErr.Code == 503 || apiErr.ErrorCode == 10008 || apiErr.ErrorCode == 10074 || apiErr.ErrorCode == 10005
	}
	return errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse)
}
