package conformance

import (
	"flag"
	"os"
	"testing"
)

// TestMain raises the default parallelism: the tests mostly wait (on
// service calls, periods and each server's shutdown), so running more of
// them at once than GOMAXPROCS keeps the package fast on small machines. An
// explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			set = true
		}
	})
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(m.Run())
}
