package bridge

// Writers reports how many clients b has, and how many of them have a
// writer goroutine running.
func Writers(b *Bridge) (clients, running int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for cl := range b.clients {
		cl.mu.Lock()
		if cl.running {
			running++
		}
		cl.mu.Unlock()
	}
	return len(b.clients), running
}
