//go:build e2e

package e2e

import "syscall"

// sysProcAttr puts a process in a group of its own, and has the kernel
// kill it if the test binary dies without cleaning up, as it does when
// go test's -timeout expires.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
