package main

import "syscall"

// sysProcAttr puts a server in a process group of its own, out of reach of
// the terminal's Ctrl-C, which the suite handles by stopping it, and has
// the kernel kill it if the suite dies without doing so.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
