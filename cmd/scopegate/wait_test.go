package main

import (
	"os/exec"
	"testing"

	"github.com/scopegate/scopegate/internal/testutil"
)

// waitExit waits for cmd to exit, and fails the test when it has not
// within testutil.WaitTimeout: a server that does not stop on SIGTERM
// must not hang the test binary.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return testutil.Recv(t, exited, testutil.WaitTimeout, "scopegate to exit after SIGTERM")
}
