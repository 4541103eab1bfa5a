package receiver

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/roomhook/roomhook/schema/signature"
)

// Stats counts what a Receiver saw. Received = Verified + Rejected (+ requests still being
// read); Verified = Accepted + Failed (+ requests still in their Latency or whose sender gave
// up during it).
type Stats struct {
	Received   uint64            // POST requests
	Verified   uint64            // passed every signature check and carried a webhook body
	Rejected   uint64            // refused: failed a check or not a webhook
	Reasons    map[string]uint64 // Rejected by reason (the Reason* constants)
	Failed     uint64            // verified but answered with the injected failure status
	Accepted   uint64            // answered 200: deliveries
	Duplicates uint64            // accepted again: an id already accepted on the same path
	OutOfOrder uint64            // accepted after a later event of the same room on the same path
	Paths      map[string]uint64 // Accepted by request path (one path per endpoint)
}

// Reasons a request is refused, as counted in Stats.Reasons.
const (
	ReasonMissingToken      = "missing token"
	ReasonMalformedToken    = "malformed token"
	ReasonBadSignature      = "bad token signature"
	ReasonWrongIssuer       = "wrong issuer (API key)"
	ReasonExpired           = "token expired"
	ReasonNotYetValid       = "token not yet valid"
	ReasonMissingBodyHash   = "token has no body hash"
	ReasonBodyHashMismatch  = "body hash mismatch"
	ReasonStandardHeaders   = "standard webhooks: missing header"
	ReasonStandardTimestamp = "standard webhooks: timestamp out of tolerance"
	ReasonStandardSignature = "standard webhooks: no matching signature"
	ReasonBodyTooLarge      = "body too large"
	ReasonBodyUnreadable    = "body unreadable"
	ReasonNotWebhook        = "not a webhook body"
	ReasonOther             = "other"
)

var reasons = []struct {
	err    error
	reason string
}{
	{signature.ErrMissingToken, ReasonMissingToken},
	{signature.ErrMalformedToken, ReasonMalformedToken},
	{signature.ErrBadSignature, ReasonBadSignature},
	{signature.ErrWrongIssuer, ReasonWrongIssuer},
	{signature.ErrExpired, ReasonExpired},
	{signature.ErrNotYetValid, ReasonNotYetValid},
	{signature.ErrMissingBodyHash, ReasonMissingBodyHash},
	{signature.ErrBodyHashMismatch, ReasonBodyHashMismatch},
	{signature.ErrStandardMissingHeaders, ReasonStandardHeaders},
	{signature.ErrStandardTimestamp, ReasonStandardTimestamp},
	{signature.ErrStandardSignature, ReasonStandardSignature},
}

func reasonOf(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ReasonOther
}

// String is a one-line summary, the reasons for refusals included.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "received %d, verified %d, accepted %d, failed (injected) %d, rejected %d, duplicates %d, out of order %d",
		s.Received, s.Verified, s.Accepted, s.Failed, s.Rejected, s.Duplicates, s.OutOfOrder)
	if len(s.Reasons) > 0 {
		keys := make([]string, 0, len(s.Reasons))
		for k := range s.Reasons {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %d", k, s.Reasons[k])
		}
		b.WriteString(")")
	}
	return b.String()
}
