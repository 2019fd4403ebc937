package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"mako/config/convert"
)

// convertConfig implements `mako convert-config [-python P] PATH.py`: the
// YAML goes to stdout, one warning per line to stderr. Exit 0 when the
// result passes `mako check` here; 1 when the module cannot be read or a
// value cannot be converted (nothing printed), or when the printed result
// does not pass the check (e.g. a ca_file missing on this machine); 2 on
// usage errors.
func convertConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mako convert-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	python := fs.String("python", "python3", "Python 3 interpreter that runs the config module")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mako convert-config [-python python3] SOCKETSHARK_CONFIG.py > mako.yaml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	settings, err := convert.Load(ctx, *python, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "mako convert-config:", err)
		return 1
	}
	res, err := convert.Convert(settings)
	if err != nil {
		fmt.Fprintln(stderr, "mako convert-config:", err)
		return 1
	}
	stdout.Write(res.YAML)
	for _, w := range res.Warnings {
		fmt.Fprintln(stderr, "mako convert-config: warning:", w)
	}
	if err := convert.Check(res.YAML); err != nil {
		fmt.Fprintln(stderr, "mako convert-config: the result does not pass mako check here:", err)
		return 1
	}
	return 0
}
