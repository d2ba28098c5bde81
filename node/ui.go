package node

import (
	"context"
	"io/fs"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/abacus-dev/abacus"
	"github.com/abacus-dev/abacus/api"
	"github.com/abacus-dev/abacus/history"
	"github.com/abacus-dev/abacus/rollup"
	"github.com/abacus-dev/abacus/ui"
)

// operatorView is the dashboard's part of a node: the in-memory history,
// what feeds it, and the /ui/ handler. Nil with Config.NoUI.
type operatorView struct {
	history *history.History
	tally   *history.Tally
	sampler *history.Sampler
	sampled *prometheus.Registry // the collectors the history reads
}

// newOperatorView returns the history and its sampler, or nil with
// Config.NoUI. The sampler gathers its own registry, on which registerer
// puts the node's abacus metrics; reg, the node's, gets the history's size.
func (n *Node) newOperatorView(reg *prometheus.Registry) *operatorView {
	if n.cfg.NoUI {
		return nil
	}
	v := &operatorView{history: history.New(history.Options{}), tally: new(history.Tally), sampled: prometheus.NewRegistry()}
	// Its own size, so that the 5 MB budget can be checked on a live node.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "abacus_ui_history_bytes",
		Help: "Estimated memory of the dashboard's in-memory history (15 min at 1 s; bounded under 5 MB).",
	}, func() float64 { return float64(v.history.Bytes()) }))
	v.sampler = &history.Sampler{
		History: v.history, Gatherer: v.sampled, Tally: v.tally, Logger: n.log,
		Namespaces: func(ctx context.Context) ([]string, error) {
			nss, err := n.svc.ListNamespaces(ctx)
			names := make([]string, len(nss))
			for i, ns := range nss {
				names[i] = ns.Name
			}
			return names, err
		},
	}
	if n.stores.embedded != nil {
		v.sampler.StoreBytes = func() (int64, bool) { return dirBytes(n.cfg.DataDir) }
	}
	return v
}

// registerer returns where the node registers the metrics the history
// reads: reg and the history's registry, or reg alone with the view off.
func (v *operatorView) registerer(reg *prometheus.Registry) prometheus.Registerer {
	if v == nil {
		return reg
	}
	return teeRegisterer{reg, v.sampled}
}

// teeRegisterer registers each collector on every registerer: a collector
// may serve several registries.
type teeRegisterer []prometheus.Registerer

// Register implements prometheus.Registerer; it fails, having registered
// nothing it can undo, at the first registerer that refuses.
func (t teeRegisterer) Register(c prometheus.Collector) error {
	for i, r := range t {
		if err := r.Register(c); err != nil {
			for _, done := range t[:i] {
				done.Unregister(c)
			}
			return err
		}
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (t teeRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (t teeRegisterer) Unregister(c prometheus.Collector) bool {
	ok := true
	for _, r := range t {
		ok = r.Unregister(c) && ok
	}
	return ok
}

// service returns the Service the API serves: the node's, counted per
// namespace for the history when the view is on.
func (v *operatorView) service(svc api.Service) api.Service {
	if v == nil {
		return svc
	}
	return talliedService{Service: svc, tally: v.tally}
}

// handler mounts the dashboard beside the API handler h.
func (v *operatorView) handler(n *Node, h http.Handler) http.Handler {
	if v == nil {
		return h
	}
	opts := ui.Options{
		History: v.history,
		CounterState: func(ctx context.Context, namespace, counter string) (rollup.CounterState, error) {
			ns, err := n.svc.GetNamespace(ctx, namespace)
			if err != nil {
				return rollup.CounterState{}, err
			}
			return n.pipeline.State(ns.ID, counter), nil
		},
	}
	if a := n.authenticator(); a != nil {
		opts.Auth = a
	}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	u := ui.Handler(opts)
	mux.Handle("/ui", u)
	mux.Handle(ui.Prefix, u)
	return mux
}

// run samples the history until ctx ends.
func (v *operatorView) run(ctx context.Context) {
	if v != nil {
		v.sampler.Run(ctx)
	}
}

// dirBytes returns the size of the files under dir: the embedded store's
// size on disk. Pebble keeps a few dozen to a few thousand files, so a walk
// once per second costs little next to what it reports.
func dirBytes(dir string) (int64, bool) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed by a compaction mid-walk
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err == nil
}

// talliedService counts each counter call's requests and increments per
// namespace for the history's per-namespace rates. A batch counts one
// request per run of items of one namespace, and one increment per add.
type talliedService struct {
	api.Service
	tally *history.Tally
}

func (s talliedService) Add(ctx context.Context, r abacus.AddRequest) (abacus.Token, error) {
	s.tally.Count(r.Namespace, 1, 1)
	return s.Service.Add(ctx, r)
}

func (s talliedService) AddAndGet(ctx context.Context, r abacus.AddRequest) (int64, abacus.Token, error) {
	s.tally.Count(r.Namespace, 1, 1)
	return s.Service.AddAndGet(ctx, r)
}

func (s talliedService) Get(ctx context.Context, r abacus.Ref) (int64, error) {
	s.tally.Count(r.Namespace, 1, 0)
	return s.Service.Get(ctx, r)
}

func (s talliedService) Clear(ctx context.Context, r abacus.Ref, tok abacus.Token) (abacus.Token, error) {
	s.tally.Count(r.Namespace, 1, 0)
	return s.Service.Clear(ctx, r, tok)
}

func (s talliedService) AddBatch(ctx context.Context, rs []abacus.AddRequest) ([]abacus.Token, error) {
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Namespace == rs[i].Namespace {
			j++
		}
		s.tally.Count(rs[i].Namespace, 1, uint64(j-i))
		i = j
	}
	return s.Service.AddBatch(ctx, rs)
}

func (s talliedService) GetBatch(ctx context.Context, rs []abacus.Ref) ([]int64, error) {
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].Namespace == rs[i].Namespace {
			j++
		}
		s.tally.Count(rs[i].Namespace, 1, 0)
		i = j
	}
	return s.Service.GetBatch(ctx, rs)
}
