package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/spf13/cobra"

	"github.com/abacus-dev/abacus/client"
)

// defaultHTTPAddr is abacusd's default HTTP listen address, where top reads
// the node's history (GET /ui/api/history) and its namespaces (the Connect
// JSON API).
const defaultHTTPAddr = "127.0.0.1:7401"

// httpAddrEnv overrides defaultHTTPAddr.
const httpAddrEnv = "ABACUS_HTTP_ADDR"

func (a *app) topCmd() *cobra.Command {
	httpAddr := defaultHTTPAddr
	if v, ok := a.lookupEnv(httpAddrEnv); ok && v != "" {
		httpAddr = v
	}
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top [--http-addr HOST:PORT]",
		Short: "A live terminal view of a node's figures per namespace",
		Long: `top shows what a node serves, refreshed every second: node-wide requests/s,
increments/s, rollup lag and queue depth, drops, WAL fsync latency and store
size, and per namespace its type, request and increment rates, rollup lag
and queued counters. It reads the node's in-memory history from its HTTP
port (the dashboard's /ui/api/history, so the node must run with --ui) and
its namespaces through the API, with --token's rights: namespaces the token
has no right on are not shown.

Keys: q or ctrl+c quits; s changes the order (requests/s, increments/s, name).`,
		Args: usageArgs(cobra.ExactArgs(0)),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return usagef(cmd, "--interval must be positive, not %v", interval)
			}
			src, err := a.topSource(httpAddr)
			if err != nil {
				return err
			}
			m := newTopModel(src, httpAddr, interval)
			p := tea.NewProgram(m, tea.WithContext(cmd.Context()), tea.WithInput(a.stdin),
				tea.WithOutput(a.stdout), tea.WithAltScreen())
			final, err := p.Run()
			if err != nil {
				return err
			}
			if fm, ok := final.(topModel); ok && fm.fatal != nil {
				return fm.fatal
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http-addr", httpAddr, "HTTP address of the node (default from $"+httpAddrEnv+" when set)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	return cmd
}

// topSource returns the HTTP source of top: TLS with the --tls-* flags,
// the bearer token of --token or $ABACUS_TOKEN.
func (a *app) topSource(httpAddr string) (*httpTopSource, error) {
	src := &httpTopSource{base: "http://" + httpAddr, hc: &http.Client{Timeout: a.timeout}}
	if a.tlsCA != "" || a.tlsCert != "" || a.tlsKey != "" || a.tlsServerName != "" {
		cfg, err := client.TLSConfig(a.tlsCA, a.tlsCert, a.tlsKey, a.tlsServerName)
		if err != nil {
			return nil, &usageError{err: err}
		}
		src.base = "https://" + httpAddr
		src.hc.Transport = &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}
	}
	src.token = a.token
	if src.token == "" {
		src.token, _ = a.lookupEnv(tokenEnv)
	}
	return src, nil
}

// topSource fetches what top shows.
type topSource interface {
	fetch(ctx context.Context) (topData, error)
}

// topData is one refresh of top.
type topData struct {
	at         time.Time
	node       nodeFigures
	namespaces []nsFigures
}

type nodeFigures struct {
	requests, increments, lag, queue, drops, fsyncP99, storeBytes float64 // NaN: unknown
}

type nsFigures struct {
	name, kind                  string
	requests, increments        float64 // per second; NaN: unknown
	lag, queue                  float64
	hasLag, hasQueue, hasCounts bool
}

// httpTopSource reads a node's history and namespaces over HTTP.
type httpTopSource struct {
	base  string
	token string
	hc    *http.Client
}

// historyJSON is the shape of GET /ui/api/history (package history).
type historyJSON struct {
	Times  []int64 `json:"times"`
	Series []struct {
		Group     string     `json:"group"`
		Label     string     `json:"label"`
		Namespace string     `json:"namespace"`
		Values    []*float64 `json:"values"`
	} `json:"series"`
}

// apiErrorJSON is an error as the Connect protocol (and /ui/api/) send it.
type apiErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (s *httpTopSource) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiErrorJSON
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, e.Code, e.Message)
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%s %s: 404: is the node running with --ui?", method, path)
		}
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	return json.Unmarshal(b, out)
}

// recentPoints is how many samples top reads: a figure missing from the
// last sample (a histogram with no observation) falls back on the latest
// one before it.
const recentPoints = 5

func (s *httpTopSource) fetch(ctx context.Context) (topData, error) {
	var h historyJSON
	if err := s.do(ctx, http.MethodGet, fmt.Sprintf("/ui/api/history?points=%d", recentPoints), nil, &h); err != nil {
		return topData{}, err
	}
	var nss struct {
		Namespaces []struct {
			Name        string `json:"name"`
			CounterType string `json:"counter_type"`
		} `json:"namespaces"`
	}
	if err := s.do(ctx, http.MethodPost, "/abacus.v1.NamespaceService/ListNamespaces", []byte("{}"), &nss); err != nil {
		return topData{}, err
	}
	d := topData{at: time.Now()}
	if n := len(h.Times); n > 0 {
		d.at = time.UnixMilli(h.Times[n-1])
	}
	nan := math.NaN()
	d.node = nodeFigures{nan, nan, nan, nan, nan, nan, nan}
	add := func(p *float64, v float64) {
		if math.IsNaN(*p) {
			*p = 0
		}
		*p += v
	}
	byNS := map[string]*nsFigures{}
	for _, ns := range nss.Namespaces {
		f := &nsFigures{name: ns.Name, kind: ns.CounterType, requests: nan, increments: nan}
		byNS[ns.Name] = f
		d.namespaces = append(d.namespaces, *f)
	}
	for _, sr := range h.Series {
		v, ok := lastOf(sr.Values)
		if !ok {
			continue
		}
		switch sr.Group {
		case "requests":
			add(&d.node.requests, v)
		case "increments":
			add(&d.node.increments, v)
		case "lag":
			d.node.lag = v
		case "queue":
			d.node.queue = v
		case "drops":
			add(&d.node.drops, v)
		case "fsync":
			if sr.Label == "p99" {
				d.node.fsyncP99 = v
			}
		case "store":
			d.node.storeBytes = v
		}
		f := byNS[sr.Namespace]
		if f == nil {
			continue
		}
		switch sr.Group {
		case "ns_requests":
			f.requests, f.hasCounts = v, true
		case "ns_increments":
			f.increments, f.hasCounts = v, true
		case "ns_lag":
			f.lag, f.hasLag = v, true
		case "ns_queue":
			f.queue, f.hasQueue = v, true
		}
	}
	for i := range d.namespaces {
		d.namespaces[i] = *byNS[d.namespaces[i].name]
	}
	return d, nil
}

func lastOf(vals []*float64) (float64, bool) {
	for i := len(vals) - 1; i >= 0; i-- {
		if vals[i] != nil {
			return *vals[i], true
		}
	}
	return 0, false
}

// ---- the terminal view ----

// topModel is top's bubbletea model.
type topModel struct {
	src      topSource
	addr     string
	interval time.Duration

	width, height int
	data          topData
	have          bool
	err           error
	sortBy        int // index into topSorts
	fatal         error
}

var topSorts = []string{"requests/s", "increments/s", "name"}

type topDataMsg struct {
	d   topData
	err error
}

type topTickMsg struct{}

func newTopModel(src topSource, addr string, interval time.Duration) topModel {
	return topModel{src: src, addr: addr, interval: interval, width: 80, height: 24}
}

func (m topModel) fetch() tea.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), max(m.interval, 5*time.Second))
	defer cancel()
	d, err := m.src.fetch(ctx)
	return topDataMsg{d, err}
}

// Init fetches at once; later fetches follow each answer by an interval,
// so a slow node is never asked twice at a time.
func (m topModel) Init() tea.Cmd { return m.fetch }

// Update handles keys, resizes, ticks and answers.
func (m topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "s":
			m.sortBy = (m.sortBy + 1) % len(topSorts)
		}
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topTickMsg:
		return m, m.fetch
	case topDataMsg:
		if msg.err != nil {
			m.err = msg.err
		} else {
			m.data, m.have, m.err = msg.d, true, nil
		}
		return m, tea.Tick(m.interval, func(time.Time) tea.Msg { return topTickMsg{} })
	}
	return m, nil
}

var (
	topTitle  = lipgloss.NewStyle().Bold(true)
	topHeader = lipgloss.NewStyle().Bold(true).Reverse(true)
	topMuted  = lipgloss.NewStyle().Faint(true)
	topBad    = lipgloss.NewStyle().Foreground(lipgloss.Color("1"))
)

// View draws the screen, every line cut to the terminal's width and the
// namespace list to its height.
func (m topModel) View() string {
	var lines []string
	title := topTitle.Render("abacus top") + " " + m.addr
	if m.have {
		title += topMuted.Render("  at " + m.data.at.Format("15:04:05"))
	}
	title += topMuted.Render("  (q quit, s sort by " + topSorts[m.sortBy] + ")")
	lines = append(lines, title)
	if m.err != nil {
		lines = append(lines, topBad.Render("error: "+m.err.Error()))
	}
	if !m.have {
		lines = append(lines, "waiting for the node…")
		return m.fit(lines)
	}
	n := m.data.node
	figures := []string{
		"requests " + rate(n.requests),
		"increments " + rate(n.increments),
		"rollup lag " + secs(n.lag),
		"queued " + num(n.queue),
		"drops " + rate(n.drops),
		"fsync p99 " + ms(n.fsyncP99),
		"store " + bytesText(n.storeBytes),
	}
	lines = append(lines, wrapFigures(figures, m.width)...)
	lines = append(lines, "")

	nameW := 9
	for _, ns := range m.data.namespaces {
		nameW = max(nameW, len(ns.name))
	}
	// The name column gives way first on a narrow terminal.
	const rest = 12 + 10 + 10 + 9 + 8 + 5
	nameW = max(min(nameW, m.width-rest), 9)
	row := func(name, kind, req, inc, lag, queue string) string {
		return fmt.Sprintf("%-*s  %-11s %9s %9s %8s %7s", nameW, ansi.Truncate(name, nameW, "…"), kind, req, inc, lag, queue)
	}
	lines = append(lines, topHeader.Render(row("NAMESPACE", "TYPE", "REQ/S", "INCR/S", "LAG", "QUEUED")))
	nss := slices.Clone(m.data.namespaces)
	slices.SortStableFunc(nss, func(a, b nsFigures) int {
		switch topSorts[m.sortBy] {
		case "requests/s":
			if c := cmp.Compare(orZero(b.requests), orZero(a.requests)); c != 0 {
				return c
			}
		case "increments/s":
			if c := cmp.Compare(orZero(b.increments), orZero(a.increments)); c != 0 {
				return c
			}
		}
		return strings.Compare(a.name, b.name)
	})
	room := m.height - len(lines)
	for i, ns := range nss {
		if i == room-1 && len(nss) > room {
			lines = append(lines, topMuted.Render(fmt.Sprintf("… %d more", len(nss)-i)))
			break
		}
		lag, queue := "–", "–"
		if ns.hasLag {
			lag = secs(ns.lag)
		}
		if ns.hasQueue {
			queue = num(ns.queue)
		}
		lines = append(lines, row(ns.name, ns.kind, rate(ns.requests), rate(ns.increments), lag, queue))
	}
	if len(nss) == 0 {
		lines = append(lines, topMuted.Render("no namespace visible with this token"))
	}
	return m.fit(lines)
}

// fit cuts lines to the terminal.
func (m topModel) fit(lines []string) string {
	if m.height > 0 && len(lines) > m.height {
		lines = lines[:m.height]
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.width, "")
	}
	return strings.Join(lines, "\n")
}

// wrapFigures lays the node's figures out over as many lines as the width
// needs.
func wrapFigures(figs []string, width int) []string {
	var out []string
	line := ""
	for _, f := range figs {
		switch {
		case line == "":
			line = f
		case len(line)+3+len(f) <= width:
			line += "   " + f
		default:
			out = append(out, line)
			line = f
		}
	}
	return append(out, line)
}

func orZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case math.Abs(v) >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v) || math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func rate(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return num(v) + "/s"
}

func secs(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v < 1 {
		return fmt.Sprintf("%.0fms", v*1e3)
	}
	return fmt.Sprintf("%.1fs", v)
}

func ms(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.2fms", v)
}

func bytesText(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
