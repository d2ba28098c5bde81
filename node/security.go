package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/abacus-dev/abacus/api"
	"github.com/abacus-dev/abacus/auth"
	"github.com/abacus-dev/abacus/certs"
)

// loadSecurity loads the TLS certificates and the access tokens the Config
// names. A file that cannot be loaded fails the start: a node must not serve
// without the protection it was asked for.
func (n *Node) loadSecurity() error {
	if n.cfg.TLSCert != "" || n.cfg.TLSKey != "" {
		r, err := certs.New(certs.Files{Cert: n.cfg.TLSCert, Key: n.cfg.TLSKey, ClientCA: n.cfg.TLSClientCA}, n.log)
		if err != nil {
			return err
		}
		n.certs = r
	}
	if n.cfg.AuthTokens != "" {
		k, err := auth.NewKeeper(n.cfg.AuthTokens, n.log)
		if err != nil {
			return fmt.Errorf("--auth-tokens: %w", err)
		}
		n.tokens = k
	}
	return nil
}

// authenticator returns the tokens keeper as the API's Authenticator, or
// nil (access control off): a nil *auth.Keeper in the interface would not
// be nil.
func (n *Node) authenticator() api.Authenticator {
	if n.tokens == nil {
		return nil
	}
	return n.tokens
}

// watchSecurity reloads the certificates and tokens when their files
// change, until ctx ends.
func (n *Node) watchSecurity(ctx context.Context) {
	if n.certs != nil {
		n.wg.Go(func() { n.certs.Watch(ctx, n.cfg.WatchInterval) })
	}
	if n.tokens != nil {
		n.wg.Go(func() { n.tokens.Watch(ctx, n.cfg.WatchInterval) })
	}
}

// Reload reloads the TLS certificates and access tokens now (abacusd calls
// it on SIGHUP). A file that fails to load keeps its previous contents in
// force; the errors are returned joined.
func (n *Node) Reload() error {
	var errs []error
	if n.certs != nil {
		errs = append(errs, n.certs.Reload())
	}
	if n.tokens != nil {
		errs = append(errs, n.tokens.Reload())
	}
	return errors.Join(errs...)
}

// listen opens a listener capped at MaxConnections open connections: past
// the cap, new connections wait in the kernel's backlog instead of taking
// the node's memory and file descriptors.
func (n *Node) listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if n.cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, n.cfg.MaxConnections)
	}
	return ln, nil
}

// defaultTimeout turns a negative Config.DefaultTimeout into none.
func (n *Node) defaultTimeout() time.Duration {
	return max(n.cfg.DefaultTimeout, 0)
}

// adminOnly serves h only to a token with the admin right on every
// namespace ("*") once access control is on: profiles expose the node's
// internals, every namespace's included.
func (n *Node) adminOnly(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.tokens != nil {
			p, err := n.tokens.Authenticate(r.Header.Get("Authorization"))
			switch {
			case err != nil:
				http.Error(w, "unauthenticated: "+err.Error(), http.StatusUnauthorized)
				return
			case !p.CanEverywhere(auth.Admin):
				http.Error(w, fmt.Sprintf("permission denied: token %q needs the admin right on \"*\" for %s", p.Name, r.URL.Path), http.StatusForbidden)
				return
			}
		}
		h(w, r)
	})
}

// exposed reports whether addr listens beyond loopback: an empty or
// unspecified host (":7400", "0.0.0.0:7400", "[::]:7400") or any address
// that is not a loopback one. A host name other than localhost counts as
// exposed, since it may resolve anywhere.
func exposed(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
