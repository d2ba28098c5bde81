package e2e

// Tests of the operator's views (issue 16) against a built abacusd: the
// dashboard in Debian's chromium, driven by chromedp, with access tokens on
// (the pages get the token once, through their form, and make every call
// with it), and `abacus top` in tmux.
//
// Screenshots are kept as artifacts under $ABACUS_UI_ARTIFACTS (default
// e2e/artifacts, ignored by git). ABACUS_UI_SCREENSHOT=path also writes
// the overview there (how docs/dashboard.png is made:
// ABACUS_UI_SCREENSHOT=$PWD/docs/dashboard.png go test ./e2e -run TestDashboard).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPath returns Debian's chromium, or skips the test where it is not
// installed; on CI (CI set), where scripts/test.sh installs it, its
// absence fails the test instead.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (scripts/test.sh installs it with apt-get)")
	}
	t.Skip("chromium not installed: apt-get install chromium")
	return ""
}

// artifactsDir returns where screenshots go.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ABACUS_UI_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless chromium and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserPath(t)),
		chromedp.NoSandbox, // tests run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.WindowSize(1400, 1100),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	// The first call starts the browser, which lives as long as this
	// context: no timeout on it; the waits below have theirs.
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// connectCall POSTs one Connect JSON call with a bearer token and returns
// the HTTP status and the decoded body.
func connectCall(t *testing.T, base, token, method string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/abacus.v1."+method, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v in %s", method, err, raw)
	}
	return resp.StatusCode, out
}

// shot saves a screenshot of the viewport as a PNG artifact.
func shot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if _, err := png.Decode(bytes.NewReader(buf)); err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", name, err)
	}
	p := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
	return buf
}

// poll waits until the JavaScript expression is truthy.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(45*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText.slice(0, 2000)`))
		t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, state)
	}
}

func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	ctx := browser(t)

	admin := newSecret("operator")
	tokens := writeFile(t, "tokens.yaml", tokensFile(tokenEntry(admin, "*:read,write,admin")))
	d := newDaemon(t, "../examples/namespaces.yaml")
	d.extra = []string{"--auth-tokens", tokens}
	d.start()
	base := "http://" + d.httpAddr

	// The counter the lookup must show: 3 × 7 on an ACCURATE namespace.
	for i := range 3 {
		if code, out := connectCall(t, base, admin.token, "CounterService/AddCount", map[string]any{
			"namespace": "clicks", "counter_name": "ui_counter", "delta": 7,
			"idempotency_token": map[string]any{"token": fmt.Sprintf("ui-%d", i), "generation_time": time.Now().UTC().Format(time.RFC3339Nano)},
		}); code != 200 {
			t.Fatalf("AddCount: %d %v", code, out)
		}
	}

	// A steady load on views for the overview's charts, until the test ends.
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopLoad(); wg.Wait() })
	for g := range 4 {
		wg.Go(func() {
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := 0; loadCtx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"namespace":"views","counter_name":"page%d","delta":1}`, (g*7+i)%50)
				req, _ := http.NewRequestWithContext(loadCtx, "POST", base+"/abacus.v1.CounterService/AddCount", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", admin.bearer())
				if resp, err := hc.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(5 * time.Millisecond) // leave the CPUs to the browser too
			}
		})
	}

	// The token is entered once, kept in session storage, and sent from
	// then on; without it the pages show the API's refusal.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/ui/#overview"),
		chromedp.WaitVisible(chromedp.CSS("#token-input")),
	); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the refusal without a token", `document.querySelector("#live").textContent.includes("unauthenticated")`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token-input"), admin.token),
		chromedp.Click(chromedp.CSS("#token-save")),
	); err != nil {
		t.Fatal(err)
	}
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("abacus.token")`))
	if err != nil {
		t.Fatal(err)
	}
	if stored != admin.token {
		t.Fatalf("session storage holds %q, want the token", stored)
	}

	t.Run("overview charts draw while a load runs", func(t *testing.T) {
		for _, group := range []string{"requests", "increments"} {
			poll(t, ctx, group+" chart with data",
				fmt.Sprintf(`(() => { const c = document.querySelector('.chart[data-group=%q]'); return c && +c.dataset.points >= 5 && +c.dataset.last > 0; })()`, group))
		}
		for _, group := range []string{"lag", "queue", "store"} {
			poll(t, ctx, group+" chart drawn", fmt.Sprintf(`!!document.querySelector('.chart[data-group=%q] canvas')`, group))
		}
		// The requests line is on the canvas: count the pixels of the
		// first series' colour (#3559e0) in the plot.
		pixels, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
			const c = document.querySelector('.chart[data-group="requests"] canvas');
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			let n = 0;
			for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i]-0x35) < 24 && Math.abs(d[i+1]-0x59) < 24 && Math.abs(d[i+2]-0xe0) < 24 && d[i+3] > 200) n++;
			return n; })()`))
		if err != nil {
			t.Fatal(err)
		}
		if pixels < 50 {
			t.Errorf("the requests chart has %d pixels of its line's colour; no line drawn", pixels)
		}
		tile, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#tile-requests")))
		if err != nil {
			t.Fatal(err)
		}
		if tile == "–" || tile == "0" {
			t.Errorf("requests/s tile shows %q under load", tile)
		}
		// Let a few more seconds of history draw before the picture; the
		// README's picture gets a minute.
		wait := 5 * time.Second
		if os.Getenv("ABACUS_UI_SCREENSHOT") != "" {
			wait = time.Minute
		}
		time.Sleep(wait)
		img := shot(t, ctx, "overview.png")
		if p := os.Getenv("ABACUS_UI_SCREENSHOT"); p != "" {
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("counter lookup shows the count written", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/ui/#counter"),
			chromedp.WaitVisible(chromedp.CSS("#lookup-ns")),
			chromedp.SendKeys(chromedp.CSS("#lookup-ns"), "clicks"),
			chromedp.SendKeys(chromedp.CSS("#lookup-counter"), "ui_counter"),
			chromedp.Click(chromedp.CSS("#lookup-go")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the count", `document.querySelector("#lookup-count").textContent === "21"`)
		poll(t, ctx, "the rollup state", `!["", "–"].includes(document.querySelector("#lookup-state").textContent)`)
		poll(t, ctx, "the three events", `document.querySelectorAll("#lookup-events tbody tr").length === 3`)
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#recount-btn"))); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the recount", `/match|MISMATCH/.test(document.querySelector("#recount-result").textContent)`)
		shot(t, ctx, "counter.png")
	})

	t.Run("create a namespace from the form", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/ui/#namespaces"),
			chromedp.WaitVisible(chromedp.CSS("#ns-name")),
			chromedp.SendKeys(chromedp.CSS("#ns-name"), "ui_made"),
			chromedp.SetValue(chromedp.CSS("#ns-type"), "ACCURATE"),
			chromedp.SendKeys(chromedp.CSS(`#ns-form input[name="accept_limit"]`), "3s"),
			chromedp.SendKeys(chromedp.CSS(`#ns-form input[name="description"]`), "made in a browser"),
			chromedp.Click(chromedp.CSS("#ns-submit")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the confirmation", `!document.querySelector("#ns-ok").hidden`)
		poll(t, ctx, "the new row", `!!document.querySelector('#ns-table tr[data-name="ui_made"]')`)
		code, out := connectCall(t, base, admin.token, "NamespaceService/GetNamespace", map[string]any{"name": "ui_made"})
		if code != 200 {
			t.Fatalf("GetNamespace ui_made: %d %v", code, out)
		}
		ns := out["namespace"].(map[string]any)
		if ns["counter_type"] != "ACCURATE" || ns["accept_limit"] != "3s" || ns["description"] != "made in a browser" {
			t.Errorf("created namespace %v", ns)
		}
		shot(t, ctx, "namespaces.png")
	})

	t.Run("edit and delete a namespace", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/ui/#namespaces"),
			chromedp.WaitVisible(chromedp.CSS(`#ns-table tr[data-name="ui_made"] button.edit`)),
			chromedp.Click(chromedp.CSS(`#ns-table tr[data-name="ui_made"] button.edit`)),
		); err != nil {
			t.Fatal(err)
		}
		// The form now holds the namespace; the description is replaced.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector('#ns-form input[name="description"]').value = "", true)`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#ns-form input[name="description"]`), "edited"),
			chromedp.SendKeys(chromedp.CSS(`#ns-form input[name="rps"]`), "250"),
			chromedp.Click(chromedp.CSS("#ns-submit")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the update", `document.querySelector("#ns-ok").textContent.includes("Updated ui_made")`)
		_, out := connectCall(t, base, admin.token, "NamespaceService/GetNamespace", map[string]any{"name": "ui_made"})
		ns, _ := out["namespace"].(map[string]any)
		rl, _ := ns["rate_limit"].(map[string]any)
		if ns["description"] != "edited" || rl["requests_per_second"] != 250.0 || ns["counter_type"] != "ACCURATE" {
			t.Errorf("after the edit: %v", ns)
		}
		// The page asks before deleting; the test answers yes.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ns-table tr[data-name="ui_made"] button.delete`))); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the row gone", `!document.querySelector('#ns-table tr[data-name="ui_made"]')`)
		if code, out := connectCall(t, base, admin.token, "NamespaceService/GetNamespace", map[string]any{"name": "ui_made"}); code != 404 {
			t.Errorf("after the delete: %d %v", code, out)
		}
	})

	t.Run("a bad name shows the API's error", func(t *testing.T) {
		const bad = "bad name!"
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+"/ui/#namespaces"),
			chromedp.WaitVisible(chromedp.CSS("#ns-name")),
			chromedp.Clear(chromedp.CSS("#ns-name")),
			chromedp.SendKeys(chromedp.CSS("#ns-name"), bad),
			chromedp.Click(chromedp.CSS("#ns-submit")),
		); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the error", `!document.querySelector("#ns-error").hidden`)
		shown, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#ns-error")))
		if err != nil {
			t.Fatal(err)
		}
		// The same call through the API gives the message the page shows.
		code, out := connectCall(t, base, admin.token, "NamespaceService/CreateNamespace",
			map[string]any{"namespace": map[string]any{"name": bad, "counter_type": "EVENTUAL"}})
		if code != 400 || out["code"] != "invalid_argument" {
			t.Fatalf("API: %d %v", code, out)
		}
		if want := "invalid_argument: " + out["message"].(string); strings.TrimSpace(shown) != want {
			t.Errorf("page shows %q, the API says %q", shown, want)
		}
		shot(t, ctx, "bad-name.png")
	})
}

// TestTopInTmux runs the built `abacus top` in a tmux terminal against a
// node under load: the captured screen shows the namespaces and a rate,
// a resized terminal is redrawn to fit, and q quits.
func TestTopInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed (scripts/test.sh installs it with apt-get)")
		}
		t.Skip("tmux not installed: apt-get install tmux")
	}
	d := newDaemon(t, "../examples/namespaces.yaml")
	d.start()
	base := "http://" + d.httpAddr
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stopLoad(); wg.Wait() })
	wg.Go(func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		for i := 0; loadCtx.Err() == nil; i++ {
			body := fmt.Sprintf(`{"namespace":"views","counter_name":"c%d","delta":1}`, i%20)
			if resp, err := hc.Post(base+"/abacus.v1.CounterService/AddCount", "application/json", strings.NewReader(body)); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(2 * time.Millisecond)
		}
	})

	// A private tmux server (-L), so that the test touches no other session.
	sock := fmt.Sprintf("abacus-top-%d", os.Getpid())
	run := func(args ...string) string {
		out, err := exec.Command(tmux, append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("new-session", "-d", "-s", "top", "-x", "100", "-y", "20",
		filepath.Join(binDir, "abacus")+" top --http-addr "+d.httpAddr)
	t.Cleanup(func() { _ = exec.Command(tmux, "-L", sock, "kill-server").Run() })

	screen := func() string { return run("capture-pane", "-p", "-t", "top") }
	waitScreen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s on the screen after 30s:\n%s", what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	s := waitScreen("namespaces with a request rate", func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			// views  EVENTUAL  123/s  123/s  ...
			if len(f) >= 3 && f[0] == "views" && strings.HasSuffix(f[2], "/s") && f[2] != "0/s" && f[2] != "–" {
				return strings.Contains(s, "clicks") && strings.Contains(s, "impressions")
			}
		}
		return false
	})
	t.Logf("abacus top:\n%s", s)
	if err := os.WriteFile(filepath.Join(artifactsDir(t), "top.txt"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}

	run("resize-window", "-t", "top", "-x", "44", "-y", "9")
	s = waitScreen("a redraw at 44 columns", func(s string) bool {
		return strings.Contains(s, "NAMESPACE") && strings.Contains(s, "more")
	})
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if n := len([]rune(l)); n > 44 {
			t.Errorf("a line of %d columns on a 44-column terminal: %q", n, l)
		}
	}

	run("send-keys", "-t", "top", "q")
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command(tmux, "-L", sock, "has-session", "-t", "top").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("abacus top still running 10s after q:\n%s", screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
