// Package certs serves a node's TLS certificates and reloads them without a
// restart: a certificate renewed on disk (or a new client CA bundle) takes
// effect for new connections, and one that fails to load leaves the old
// ones in force.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/abacus-dev/abacus/internal/filewatch"
)

// Files names a node's TLS files.
type Files struct {
	// Cert and Key are the PEM certificate chain and private key the node
	// presents. Both are required.
	Cert, Key string
	// ClientCA, if set, is a PEM bundle of the CAs that sign client
	// certificates; every client must then present one (mutual TLS).
	ClientCA string
}

// loaded is one consistent load of the files.
type loaded struct {
	cert *tls.Certificate
	cas  *x509.CertPool // nil without ClientCA
}

// Reloader holds the current certificates.
type Reloader struct {
	files Files
	log   *slog.Logger
	cur   atomic.Pointer[loaded]
}

// New loads the files. It fails if any cannot be read or parsed, so that a
// node never starts serving with TLS it cannot do. A nil logger means
// slog.Default().
func New(files Files, log *slog.Logger) (*Reloader, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{files: files, log: log}
	l, err := load(files)
	if err != nil {
		return nil, err
	}
	r.cur.Store(l)
	return r, nil
}

func load(f Files) (*loaded, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s, key %s: %w", f.Cert, f.Key, err)
	}
	l := &loaded{cert: &cert}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		l.cas = x509.NewCertPool()
		if !l.cas.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificate in it", f.ClientCA)
		}
	}
	return l, nil
}

// Reload loads the files again. On failure the current certificates stay,
// and the error is logged and returned.
func (r *Reloader) Reload() error {
	l, err := load(r.files)
	if err != nil {
		r.log.Error("TLS certificates not reloaded; the previous ones stay in force", "err", err)
		return err
	}
	r.cur.Store(l)
	r.log.Info("TLS certificates reloaded", "cert", r.files.Cert)
	return nil
}

// Watch reloads the certificates each time one of the files changes,
// polling every interval, until ctx ends.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	paths := []string{r.files.Cert, r.files.Key}
	if r.files.ClientCA != "" {
		paths = append(paths, r.files.ClientCA)
	}
	filewatch.Watch(ctx, interval, paths, func() { _ = r.Reload() })
}

// ServerConfig returns a TLS configuration (TLS 1.2 at least) that serves
// the certificates current at each handshake, and requires and verifies
// client certificates when a client CA is set. nextProtos are the ALPN
// protocols to offer ("h2" for gRPC; "h2", "http/1.1" for HTTP).
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: nextProtos}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			l := r.cur.Load()
			c := base.Clone()
			c.Certificates = []tls.Certificate{*l.cert}
			if l.cas != nil {
				c.ClientCAs = l.cas
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}
