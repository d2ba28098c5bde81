package node

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // parts of the error; none for a valid config
	}{
		{"zero but the data dir", Config{DataDir: "d"}, nil},
		{"postgres needs no data dir", Config{Postgres: "postgres://x"}, nil},
		{"no data dir", Config{}, []string{"data directory"}},
		{"loopback needs no tokens", Config{DataDir: "d", GRPCAddr: "127.0.0.1:0", HTTPAddr: "[::1]:7401"}, nil},
		{"localhost needs no tokens", Config{DataDir: "d", GRPCAddr: "localhost:7400"}, nil},
		{"all interfaces need tokens", Config{DataDir: "d", GRPCAddr: "0.0.0.0:0", HTTPAddr: ":7401"},
			[]string{"--grpc-addr 0.0.0.0:0 listens beyond loopback", "--http-addr :7401 listens beyond loopback", "add --auth-tokens FILE", "--insecure"}},
		{"a host name needs tokens", Config{DataDir: "d", GRPCAddr: "example.com:7400"}, []string{"--grpc-addr example.com:7400"}},
		{"tokens allow it", Config{DataDir: "d", GRPCAddr: "0.0.0.0:0", AuthTokens: "t.yaml"}, nil},
		{"--insecure allows it", Config{DataDir: "d", GRPCAddr: "0.0.0.0:0", Insecure: true}, nil},
		{"TLS half set", Config{DataDir: "d", TLSCert: "c.pem", TLSClientCA: "ca.pem"}, []string{"--tls-key"}},
		{"client CA without TLS", Config{DataDir: "d", TLSClientCA: "ca.pem"}, []string{"--tls-client-ca needs TLS on"}},
		{"cluster without redis", Config{DataDir: "d", RedisCluster: true}, []string{"--redis-cluster) needs"}},
		{"every problem at once", Config{
			RedisCluster: true, NamespaceRefresh: -time.Second, DrainTimeout: -1,
			RollupConcurrency: -2, RollupPause: math.NaN(),
		}, []string{"data directory", "--redis-cluster", "NamespaceRefresh", "DrainTimeout", "RollupConcurrency", "RollupPause"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want an error naming %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want it to name %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.NamespaceRefresh != 2*time.Second || c.RetentionInterval != time.Minute || c.DrainTimeout != 30*time.Second ||
		c.RollupConcurrency <= 0 || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	if pg := (Config{Postgres: "postgres://x"}).withDefaults(); pg.RollupConcurrency != 256 {
		t.Errorf("RollupConcurrency with PostgreSQL = %d, want 256", pg.RollupConcurrency)
	}
	set := Config{NamespaceRefresh: time.Second, RollupConcurrency: 3}.withDefaults()
	if set.NamespaceRefresh != time.Second || set.RollupConcurrency != 3 {
		t.Errorf("set values replaced: %+v", set)
	}
}
