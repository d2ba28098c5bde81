package node

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestMaxConnections: with MaxConnections 1, a second connection to the
// HTTP port is not served while the first is open, and is served once it
// closes.
func TestMaxConnections(t *testing.T) {
	n, err := Start(context.Background(), Config{DataDir: t.TempDir(), MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	first, err := net.Dial("tcp", n.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	// A request on the first connection makes sure it was accepted.
	if _, err := first.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if res, err := http.ReadResponse(bufio.NewReader(first), nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("first connection: %v, %v", res, err)
	}
	second, err := net.Dial("tcp", n.HTTPAddr()) // the kernel's backlog takes it
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		res, err := http.ReadResponse(bufio.NewReader(second), nil)
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("the second connection was served while the first was open (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	first.Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("second connection after the first closed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second connection was not served after the first closed")
	}
}
