package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/client"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
)

// maxBackoff caps the pause between retries: a CLI user waits for the answer,
// so a few quick tries are worth more than a long patient one.
const maxBackoff = 2 * time.Second

// client returns the Go client of --addr, creating it on first use so that
// commands that need no server (help, version) never dial. Its retries,
// tokens and ambiguity rules are the CLI's: the flags only set their limits.
func (a *app) client() (*client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	sec, err := a.securityOptions()
	if err != nil {
		return nil, err
	}
	c, err := client.New(a.addr, append(sec,
		// One call per process: there is nothing to coalesce.
		client.WithBatching(false),
		client.WithRetries(a.retries),
		client.WithAttemptTimeout(a.timeout),
		client.WithBackoff(a.backoff, maxBackoff),
		// The CLI has always retried writes to every namespace with their
		// token, and a user who reruns a write on a BEST_EFFORT namespace
		// chooses that risk; it also spares a namespace lookup per write.
		client.WithBestEffortRetries(true),
		// The error of a write refused after an uncertain attempt keeps
		// the rerun hint: rerunning with the key is always safe.
		client.WithKeepAmbiguous(true),
	)...)
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("--addr %q: %w", a.addr, err)}
	}
	a.cl = c
	return c, nil
}

// securityOptions are the client options of the access and TLS flags:
// TLS when any --tls-* flag is given, a bearer token with --token.
func (a *app) securityOptions() ([]client.Option, error) {
	var opts []client.Option
	if a.tlsCA != "" || a.tlsCert != "" || a.tlsKey != "" || a.tlsServerName != "" {
		cfg, err := client.TLSConfig(a.tlsCA, a.tlsCert, a.tlsKey, a.tlsServerName)
		if err != nil {
			return nil, &usageError{err: err}
		}
		opts = append(opts, client.WithTLS(cfg))
	}
	token := a.token
	if token == "" {
		token, _ = a.lookupEnv(tokenEnv)
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	return opts, nil
}

// counters returns the counter service of --addr.
func (a *app) counters() (abacus.CounterService, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return c.Service(), nil
}

// writeToken builds the token of an add or clear from --token and --time.
// With neither, it is the zero Token and the client assigns one; with one
// of them, a new token of the client's gives the other half. Either way the
// client sends the same token on every attempt, which makes retries safe.
func (a *app) writeToken(cmd *cobra.Command, wf writeFlags) (abacus.Token, error) {
	var at time.Time
	if wf.at != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, wf.at); err != nil {
			return abacus.Token{}, usagef(cmd, "--time %q is not an RFC 3339 time such as 2024-10-05T14:48:00Z", wf.at)
		}
	}
	if wf.token == "" && wf.at == "" {
		return abacus.Token{}, nil
	}
	if wf.token == "" && cmd.Flags().Changed("token") {
		// "add ... --token T --time X" named the idempotency token before
		// --token became the access token: refuse rather than send T as an
		// access token and count the write under a new idempotency token.
		return abacus.Token{}, usagef(cmd, "--token is the access token; give the idempotency token with --idempotency-token (with --time)")
	}
	c, err := a.client()
	if err != nil {
		return abacus.Token{}, err
	}
	tok := c.NewToken()
	if wf.token != "" {
		tok.ID = wf.token
	}
	if wf.at != "" {
		tok.Time = at
	}
	return tok, nil
}

// namespaces returns the namespace service of --addr: reads retried as the
// client retries them, creates, updates and deletes sent once.
func (a *app) namespaces() (abacusv1.NamespaceServiceClient, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return c.Namespaces(), nil
}
