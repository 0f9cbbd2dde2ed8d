package testnats

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CLIPath finds the stock nats CLI: on PATH (make exports .tools/bin), or
// in .tools/bin of the module root (make tools installs it there). Where it
// is missing the test is skipped, except under CI, where it fails.
func CLIPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	if dir, err := os.Getwd(); err == nil {
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, ".tools", "bin", "nats")
				if _, err := os.Stat(p); err == nil {
					return p
				}
				break
			}
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nats CLI not found: make tools installs it into .tools/bin")
	}
	t.Skip("nats CLI not found: run make tools")
	return ""
}

// CLI returns the nats CLI command `nats --server url args…`, run with
// ctx and a private config dir so no user context applies.
func CLI(t testing.TB, ctx context.Context, url string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, CLIPath(t), append([]string{"--server", url}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
	return cmd
}
