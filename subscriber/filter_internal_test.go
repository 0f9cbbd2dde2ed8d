package subscriber

import "testing"

func TestOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"events.library.*.document.added", "events.library.*.document.added", true},
		{"events.library.*.document.*", "events.library.*.document.added", true},
		{"events.library.*.document.*", "events.library.*.*.added", true},
		{"events.library.*.document.*", "events.library.*.library.*", false},
		{"events.library.a.document.added", "events.library.b.document.added", false},
		{"events.library.*.>", "events.library.a.document.added", true},
		{"events.>", "events.library.a.document.added", true},
		{"events.library.a.document", "events.library.a.document.added", false},
	}
	for _, tt := range tests {
		if got := overlap(tt.a, tt.b); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v", tt.a, tt.b, got)
		}
		if got := overlap(tt.b, tt.a); got != tt.want {
			t.Errorf("overlap(%q, %q) = %v", tt.b, tt.a, got)
		}
	}
	if anyOverlap([]string{"events.library.*.document.added", "events.library.*.document.deleted", "events.library.*.library.created"}) {
		t.Error("distinct types overlap")
	}
}
