package subscriber

// WorkerIndex exposes the worker choice so tests can pick libraries that
// land on different workers.
var WorkerIndex = workerIndex
