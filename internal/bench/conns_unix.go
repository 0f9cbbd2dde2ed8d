//go:build unix

package bench

import "syscall"

// raiseNoFile raises this process's soft RLIMIT_NOFILE to its hard limit
// (one socket is one file descriptor) and returns the soft limit now in
// force.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(rl.Cur), err
		}
		rl = want
	}
	return uint64(rl.Cur), nil
}
