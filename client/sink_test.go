//go:build unix

package client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// sinkEnv, set to a delay, makes TestSinkProcess serve a sink.
const sinkEnv = "ABACUS_CLIENT_SINK"

// sink is a CounterService that acknowledges every add after a fixed
// delay, without storing anything: a server as cheap as can be, so that a
// benchmark against it measures the client's own cost. The delay stands in
// for the node's group fsync, which is what lets natural batches form.
type sink struct {
	abacusv1.UnimplementedCounterServiceServer
	abacusv1.UnimplementedNamespaceServiceServer
	delay time.Duration
}

func (s *sink) wait() {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
}

func (s *sink) AddCount(context.Context, *abacusv1.AddCountRequest) (*abacusv1.AddCountResponse, error) {
	s.wait()
	return &abacusv1.AddCountResponse{}, nil
}

func (s *sink) AddCounts(context.Context, *abacusv1.AddCountsRequest) (*abacusv1.AddCountsResponse, error) {
	s.wait()
	return &abacusv1.AddCountsResponse{}, nil
}

func (s *sink) GetNamespace(_ context.Context, r *abacusv1.GetNamespaceRequest) (*abacusv1.GetNamespaceResponse, error) {
	return &abacusv1.GetNamespaceResponse{Namespace: &abacusv1.Namespace{Name: r.GetName(), CounterType: abacusv1.CounterType_EVENTUAL}}, nil
}

// TestSinkProcess is not a test: run by startSink, in a process of its
// own, it serves a sink and prints its address, until its stdin closes.
func TestSinkProcess(t *testing.T) {
	env := os.Getenv(sinkEnv)
	if env == "" {
		t.Skip("the server of BenchmarkAddCountSink, started by it")
	}
	delay, err := time.ParseDuration(env)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s := &sink{delay: delay}
	abacusv1.RegisterCounterServiceServer(srv, s)
	abacusv1.RegisterNamespaceServiceServer(srv, s)
	go srv.Serve(ln)
	fmt.Printf("addr %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // until the benchmark ends
	srv.Stop()
}

// startSink starts a sink in a process of its own, so that the server's
// CPU and allocations do not count as the client's, and returns its address.
func startSink(tb testing.TB, delay time.Duration) string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSinkProcess$")
	cmd.Env = append(os.Environ(), sinkEnv+"="+delay.String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "addr "); ok {
			go io.Copy(io.Discard, stdout)
			return addr
		}
	}
	tb.Fatalf("the sink process printed no address: %v", sc.Err())
	return ""
}

// cpuTime is the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAddCountSink measures the client's own cost per AddCount under
// natural batching: 64 or 512 goroutines against a server, in another process,
// that stores nothing and answers each RPC after a delay standing in for the
// node's fsync. cpu-ns/op is the benchmark process's CPU time (user and
// system) per AddCount, allocs/op its allocations: the client's alone.
func BenchmarkAddCountSink(b *testing.B) {
	for _, bench := range []struct {
		callers int
		delay   time.Duration
	}{{64, 0}, {64, 500 * time.Microsecond}, {512, 500 * time.Microsecond}} {
		b.Run(fmt.Sprintf("callers=%d/delay=%v", bench.callers, bench.delay), func(b *testing.B) {
			delay := bench.delay
			c := newClient(b, startSink(b, delay))
			// Learn the namespace's type first, so that the measured calls
			// are those of a client in its steady state.
			if err := c.AddCount(context.Background(), "ns", "c", 1); err != nil {
				b.Fatal(err)
			}
			for !typesSettled(c, "ns") {
				time.Sleep(time.Millisecond)
			}
			before := c.Stats()
			var ids atomic.Int64
			b.SetParallelism((bench.callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				counter := fmt.Sprint("c", ids.Add(1)%16)
				ctx := context.Background()
				for pb.Next() {
					if err := c.AddCount(ctx, "ns", counter, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			cpu = cpuTime() - cpu
			b.StopTimer()
			after := c.Stats()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(after.AddItems-before.AddItems)/float64(after.AddRPCs-before.AddRPCs), "adds/rpc")
		})
	}
}
