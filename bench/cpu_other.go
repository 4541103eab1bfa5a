//go:build !unix

package bench

import (
	"errors"
	"time"
)

// processCPU is not measured on this system.
func processCPU() (time.Duration, error) {
	return 0, errors.ErrUnsupported
}

func raiseOpenFiles() uint64 { return 0 }
