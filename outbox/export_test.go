package outbox

// RelayedCount is the relayed counter alone, without Stats' queries, for
// the benchmark's polling.
func RelayedCount(o *Outbox) uint64 { return o.relayed.Load() }

// PipelineDepth is how many published batches a SQLite relay lets wait
// for their acks and delete while it publishes the next.
const PipelineDepth = pipelineDepth
