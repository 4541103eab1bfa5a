package subscriber

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// IsConflict reports whether a key-value write lost a compare-and-set: the key exists
// (Create), or has moved on from the expected revision (Update). Replicated streams answer an
// Update conflict with a revision mismatch rather than "key exists", so both are checked.
func IsConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
