package browser

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDemoInChromium opens /demo in Debian's headless chromium (driven by
// playwright-core, demo.e2e.mjs) and checks: a message published through
// the page's form arrives in the page; the browser negotiated
// permessage-deflate; after mako restarts on the same port the page
// reconnects by itself and receives a new message, without a reload.
func TestDemoInChromium(t *testing.T) {
	skipUnlessBrowser(t)
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		t.Fatalf("playwright-core is not installed: run `npm ci` in test/browser (.ci/run does; MAKO_SKIP_BROWSER=1 skips): %v", err)
	}
	chromium := os.Getenv("MAKO_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("chromium is required at %s (apt-get install chromium; MAKO_CHROMIUM overrides the path; MAKO_SKIP_BROWSER=1 skips): %v", chromium, err)
	}
	h := newHarness(t)
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAKO_CHROMIUM", chromium)
	runNode(t, h, dir, "demo.e2e.mjs")
}
