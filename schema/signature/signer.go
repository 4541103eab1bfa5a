package signature

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signer writes the signing headers of one webhook request.
type Signer struct {
	Credentials
	// StandardSecrets are the endpoint's Standard Webhooks secrets
	// ("whsec_<base64>"). With more than one (during rotation) every one signs
	// and the receiver accepts any. Empty: no Standard Webhooks headers.
	StandardSecrets []string
	// ContentType defaults to DefaultContentType.
	ContentType string
	// UserAgent defaults to DefaultUserAgent.
	UserAgent string
	// Tokens, when set, reuses the token made for the same credentials and body within the
	// same second (see TokenCache). Nil signs every request.
	Tokens *TokenCache
}

// Sign sets on h, for body at time now: Authorization (the JWT of Token, no
// "Bearer "), Hash-Token (the same JWT), Content-Type and User-Agent, and, when
// StandardSecrets is set, webhook-id (messageID), webhook-timestamp and
// webhook-signature ("v1,<base64>" per secret, space-separated). On error h is
// left unchanged.
func (s Signer) Sign(h http.Header, body []byte, messageID string, now time.Time) error {
	token, err := s.Tokens.Token(s.Credentials, body, now)
	if err != nil {
		return err
	}
	var standardSignatures []string
	if len(s.StandardSecrets) > 0 {
		if messageID == "" {
			return fmt.Errorf("%w: Standard Webhooks signing needs a message id", ErrStandardMissingHeaders)
		}
		for i, secret := range s.StandardSecrets {
			sig, err := SignStandard(secret, messageID, now, body)
			if err != nil {
				return fmt.Errorf("standard secret %d: %w", i, err)
			}
			standardSignatures = append(standardSignatures, sig)
		}
	}

	h.Set(HeaderAuthorization, token)
	h.Set(HeaderHashToken, token)
	h.Set("Content-Type", orDefault(s.ContentType, DefaultContentType))
	h.Set("User-Agent", orDefault(s.UserAgent, DefaultUserAgent))
	if len(standardSignatures) > 0 {
		h.Set(HeaderWebhookID, messageID)
		h.Set(HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
		h.Set(HeaderWebhookSignature, strings.Join(standardSignatures, " "))
	}
	return nil
}

func orDefault(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}
