package outbox

// RelayedCount is the relayed counter alone, without Stats' queries, for
// the benchmark's polling.
func RelayedCount(o *Outbox) uint64 { return o.relayed.Load() }

// PipelineDepth is how many published batches a SQLite relay lets queue
// up for their acks while it claims and publishes the next: at most
// PipelineDepth+2 batches await their acks at once (the queue, the batch
// whose acks are awaited, the one being published).
const PipelineDepth = pipelineDepth

// DeleteDepth is how many acknowledged batches a SQLite relay lets queue
// up for their delete while one commits.
const DeleteDepth = deleteDepth
