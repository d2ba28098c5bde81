package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/abacus-dev/abacus/internal/testcerts"
)

// handshake serves one TLS connection with cfg and returns the common name
// of the certificate the client saw, or the client's handshake error.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) (string, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// With TLS 1.3 a refused client certificate shows on the first read.
	if _, err := c.Read(make([]byte, 1)); err != nil && err.Error() != "EOF" {
		return "", err
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestReloadAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "ca")
	other := testcerts.NewCA(t, "other")
	certFile, keyFile := ca.Issue(t, dir, "server-1", testcerts.Options{})
	caFile := ca.WriteCA(t, dir, "ca")
	r, err := New(Files{Cert: certFile, Key: keyFile, ClientCA: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.ServerConfig()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	clientCert := func(c *testcerts.CA, name string, o testcerts.Options) []tls.Certificate {
		o.Client = true
		cf, kf := c.Issue(t, dir, name, o)
		kp, err := tls.LoadX509KeyPair(cf, kf)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"client certificate of the CA", &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: clientCert(ca, "good", testcerts.Options{})}, true},
		{"no client certificate", &tls.Config{RootCAs: pool, ServerName: "localhost"}, false},
		{"client certificate of another CA", &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: clientCert(other, "stranger", testcerts.Options{})}, false},
		{"expired client certificate", &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: clientCert(ca, "old", testcerts.Options{Expired: true})}, false},
		{"TLS 1.1", &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11, Certificates: clientCert(ca, "good", testcerts.Options{})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handshake(t, cfg, tt.client)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake: %v, want ok=%v", err, tt.ok)
			}
		})
	}

	good := &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: clientCert(ca, "good", testcerts.Options{})}
	// A renewed certificate is served after Reload, on the same config.
	cf2, kf2 := ca.Issue(t, dir, "server-2", testcerts.Options{})
	for _, p := range [][2]string{{cf2, certFile}, {kf2, keyFile}} {
		if err := os.Rename(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn, err := handshake(t, cfg, good); err != nil || cn != "server-2" {
		t.Fatalf("after reload: %q, %v; want server-2", cn, err)
	}
	// A broken file keeps the certificate in force.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("a broken certificate reloaded")
	}
	if cn, err := handshake(t, cfg, good); err != nil || cn != "server-2" {
		t.Fatalf("after a failed reload: %q, %v; want server-2", cn, err)
	}
	if _, err := New(Files{Cert: certFile, Key: keyFile}, nil); err == nil {
		t.Fatal("New accepted a broken certificate")
	}
}
