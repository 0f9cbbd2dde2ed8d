package publisher

// Stalled reports whether a PublishAsync waits for a slot (beyond
// WithMaxPending): register made the stall channel that a freed slot
// closes.
func Stalled(p *Publisher) bool {
	p.async.mu.Lock()
	defer p.async.mu.Unlock()
	return p.async.stall != nil
}

// ParsePubAck is the fast ack parser (async.go).
var ParsePubAck = parsePubAck
