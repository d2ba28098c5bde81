// Command abacus is the command-line client of the abacus counting service.
// Run "abacus help" for its commands; the program itself is package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/abacus-dev/abacus/cli"
)

func main() {
	// Ctrl-C cancels the RPC in flight instead of killing the process
	// mid-write, so the error (and the token to rerun with) is still printed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
