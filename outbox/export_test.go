package outbox

// RelayedCount is the relayed counter alone, without Stats' queries, for
// the benchmark's polling.
func RelayedCount(o *Outbox) uint64 { return o.relayed.Load() }
