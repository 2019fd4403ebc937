//go:build !linux

package bench

import (
	"os/exec"
	"time"
)

func setPdeathsig(*exec.Cmd) {}

func selfCPU() time.Duration { return 0 }
