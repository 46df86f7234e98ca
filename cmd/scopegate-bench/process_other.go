//go:build !linux

package main

import "syscall"

// sysProcAttr leaves a server in the suite's process group, so that an
// interrupt reaches it too.
func sysProcAttr() *syscall.SysProcAttr { return nil }
