package testutil

import (
	"net"
	"sync"
)

// listener is a TCP listener that can stop listening and start again on the
// same address. While it is closed for connections its socket is closed, so
// that dials are refused as they are by a stopped server, and Accept waits
// for the socket to open again rather than failing, so that the HTTP server
// using it goes on.
type listener struct {
	addr net.Addr

	mu     sync.Mutex
	cur    net.Listener  // nil while refusing
	reopen chan struct{} // closed when cur is set again; nil while listening
	closed bool
}

func listen() (*listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &listener{addr: l.Addr(), cur: l}, nil
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		cur, reopen, closed := l.cur, l.reopen, l.closed
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if cur == nil {
			<-reopen
			continue
		}
		c, err := cur.Accept()
		if err == nil {
			return c, nil
		}
		l.mu.Lock()
		refused := l.cur != cur && !l.closed
		l.mu.Unlock()
		if !refused {
			return nil, err
		}
	}
}

// refuse closes the socket until restore.
func (l *listener) refuse() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.closed {
		return
	}
	l.cur.Close()
	l.cur, l.reopen = nil, make(chan struct{})
}

// restore opens the socket again on the same address.
func (l *listener) restore() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != nil || l.closed {
		return nil
	}
	cur, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		return err
	}
	close(l.reopen)
	l.cur, l.reopen = cur, nil
	return nil
}

func (l *listener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.reopen != nil {
		close(l.reopen)
		l.reopen = nil
	}
	if l.cur != nil {
		return l.cur.Close()
	}
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }
