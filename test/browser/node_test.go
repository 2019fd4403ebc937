package browser

import (
	"path/filepath"
	"testing"
)

// TestMakoJSNode runs mako.js's unit tests (client/js/test, node's built-in
// runner) against a real mako. Node 20 has WebSocket behind a flag; newer
// versions ignore it.
func TestMakoJSNode(t *testing.T) {
	skipUnlessBrowser(t)
	h := newHarness(t)
	root := repoRoot(t)
	runNode(t, h, root, "--experimental-websocket", "--test", filepath.Join("client", "js", "test")+string(filepath.Separator))
}
