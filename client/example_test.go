package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/abacus-dev/abacus/client"
)

// The examples need an abacus node at 127.0.0.1:7400 (go run ./cmd/abacusd
// --namespaces examples/namespaces.yaml), so they are compiled but not run.

func ExampleNew() {
	c, err := client.New("127.0.0.1:7400",
		client.WithRetries(5),                   // retry UNAVAILABLE and timeouts up to 5 times
		client.WithHedging(50*time.Millisecond), // duplicate a request slower than 50ms
		client.WithAttemptTimeout(500*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.AddCount(context.Background(), "views", "home", 1); err != nil {
		log.Fatal(err)
	}
}

func ExampleClient_AddCount() {
	c, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Concurrent calls share AddCounts RPCs (natural batching); each caller
	// still gets its own error.
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := c.AddCount(ctx, "views", "home", 1)
			var amb *client.AmbiguousError
			switch {
			case errors.As(err, &amb):
				// The add may have been applied. views is EVENTUAL, so it
				// can be sent again with amb.Token and amb.Time, within the
				// accept window, through c.Unary(), and is then counted at
				// most once (a BEST_EFFORT namespace would count it twice).
				log.Printf("unknown outcome: %v", amb)
			case err != nil:
				log.Printf("not applied: %v", err)
			}
		})
	}
	wg.Wait()
}

func ExampleClient_GetCount() {
	c, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// clicks is an ACCURATE namespace: the count includes every
	// acknowledged add.
	n, err := c.AddAndGetCount(context.Background(), "clicks", "home", 1)
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.GetCount(context.Background(), "clicks", "home")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n <= m)
}

func ExampleClient_AddCounts() {
	c, err := client.New("127.0.0.1:7400")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	// One RPC, applied all or nothing: a bad item fails the call.
	err = c.AddCounts(ctx, []client.Add{
		{Namespace: "clicks", Counter: "home", Delta: 3},
		{Namespace: "clicks", Counter: "about", Delta: -1},
	})
	if err != nil {
		log.Fatal(err)
	}
	counts, err := c.GetCounts(ctx, []client.Ref{
		{Namespace: "clicks", Counter: "home"},
		{Namespace: "clicks", Counter: "about"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts)
}
