package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithTLS makes the client speak TLS with cfg (see TLSConfig) instead of
// plaintext.
func WithTLS(cfg *tls.Config) Option {
	return withDial(grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// WithToken sends token as "authorization: Bearer <token>" with every call,
// for a node started with --auth-tokens. The token is sent on plaintext
// connections too: use WithTLS beyond loopback.
func WithToken(token string) Option {
	return withDial(grpc.WithPerRPCCredentials(bearer(token)))
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// TLSConfig returns the TLS configuration of a client (TLS 1.2 at least):
// caFile, if set, is the PEM bundle of the CAs the server's certificate must
// chain to (default: the system's); certFile and keyFile, if set, are the
// client certificate a node with --tls-client-ca requires; serverName, if
// set, is the name the server's certificate must carry (default: the host of
// the address dialed).
func TLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and its key")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}
