package publisher

import (
	"testing"

	"github.com/nats-io/nats.go"
)

// A message whose headers were changed behind o.vals' back (Header.Set
// as jetstream.WithMsgID does, Add, Del, a direct assignment) is not
// reused: the next messages carry their own headers, Nats-Msg-Id first.
func TestPutMsgDropsChangedHeaders(t *testing.T) {
	mutations := map[string]func(h nats.Header){
		"Set":    func(h nats.Header) { h.Set(nats.MsgIdHdr, "other-id") },
		"Add":    func(h nats.Header) { h.Add(nats.MsgIdHdr, "other-id") },
		"Del":    func(h nats.Header) { h.Del(hdrID); h.Set("X-Other", "x") }, // as many keys as before
		"assign": func(h nats.Header) { h[hdrTime] = []string{"2000-01-01T00:00:00.000000Z"} },
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			old := prepared{subject: "events.library.a.document.added", id: "old-id", typ: "document.added", source: "old", time: "old-time"}
			// Were the changed message pooled, the next get would return it.
			// Under -race sync.Pool drops a quarter of what it is given, at
			// random: hence rounds.
			for i := range 20 {
				o := getMsg(&old, "")
				mutate(o.m.Header)
				putMsg(o)
				pr := prepared{subject: old.subject, id: "new-id", typ: "document.added", source: "new", time: "new-time"}
				m := getMsg(&pr, "")
				want := map[string]string{
					hdrMsgID: pr.id, hdrContentType: "application/json", hdrSpecVersion: "1.0",
					hdrID: pr.id, hdrType: pr.typ, hdrSource: pr.source, hdrTime: pr.time,
				}
				if len(m.m.Header) != len(want) {
					t.Fatalf("round %d: headers %v, want %v", i, m.m.Header, want)
				}
				for k, v := range want {
					if got := m.m.Header.Values(k); len(got) != 1 || got[0] != v {
						t.Fatalf("round %d: %s = %q, want %q (headers %v)", i, k, got, v, m.m.Header)
					}
				}
				putMsg(m)
			}
		})
	}
}
