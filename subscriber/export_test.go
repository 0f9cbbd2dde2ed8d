package subscriber

import "time"

// WorkerIndex exposes the worker choice so tests can pick libraries that
// land on different workers.
var WorkerIndex = workerIndex

// SetClock replaces the clock of a MemoryStore.
func (m *MemoryStore) SetClock(now func() time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = now
}

// ServerFilters and Subsumes expose the consumer filter computation.
var (
	ServerFilters = serverFilters
	Subsumes      = subsumes
)
