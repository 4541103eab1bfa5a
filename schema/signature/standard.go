package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// standardSecretPrefix marks a Standard Webhooks secret; the rest is the
// base64 of the HMAC key.
const standardSecretPrefix = "whsec_"

func decodeStandardSecret(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, standardSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: does not start with %s", ErrBadSecret, standardSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		// Some providers print the key without padding.
		var rawErr error
		if key, rawErr = base64.RawStdEncoding.DecodeString(encoded); rawErr != nil {
			return nil, fmt.Errorf("%w: key is not base64", ErrBadSecret)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty key", ErrBadSecret)
	}
	return key, nil
}

func standardMAC(key []byte, messageID string, ts int64, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(messageID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// SignStandard returns the Standard Webhooks signature of body:
// "v1," + base64(HMAC-SHA256(key, messageID + "." + unix seconds of ts + "." +
// body)), where key is the base64-decoded part of secret after "whsec_".
func SignStandard(secret, messageID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeStandardSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(standardMAC(key, messageID, ts.Unix(), body)), nil
}

// VerifyStandard checks the Standard Webhooks headers of a request: the
// request passes when any of secrets matches any v1 signature in
// webhook-signature (so a receiver keeps both secrets while rotating), and
// webhook-timestamp is within tolerance of now either way (0 means
// DefaultStandardTolerance). Signatures of other versions are ignored. The
// error wraps ErrBadSecret, ErrStandardMissingHeaders, ErrStandardTimestamp
// or ErrStandardSignature.
func VerifyStandard(secrets []string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secrets given", ErrBadSecret)
	}
	keys := make([][]byte, 0, len(secrets))
	for i, secret := range secrets {
		key, err := decodeStandardSecret(secret)
		if err != nil {
			return fmt.Errorf("secret %d: %w", i, err)
		}
		keys = append(keys, key)
	}

	messageID := h.Get(HeaderWebhookID)
	timestamp := h.Get(HeaderWebhookTimestamp)
	signatures := h.Get(HeaderWebhookSignature)
	for _, header := range [...]struct{ name, value string }{
		{HeaderWebhookID, messageID},
		{HeaderWebhookTimestamp, timestamp},
		{HeaderWebhookSignature, signatures},
	} {
		if header.value == "" {
			return fmt.Errorf("%w: %s", ErrStandardMissingHeaders, header.name)
		}
	}

	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: not unix seconds", ErrStandardTimestamp)
	}
	if tolerance <= 0 {
		tolerance = DefaultStandardTolerance
	}
	sent := time.Unix(ts, 0)
	if age := now.Sub(sent); age > tolerance {
		return fmt.Errorf("%w: %s old, tolerance %s", ErrStandardTimestamp, age.Truncate(time.Second), tolerance)
	} else if -age > tolerance {
		return fmt.Errorf("%w: %s in the future, tolerance %s", ErrStandardTimestamp, (-age).Truncate(time.Second), tolerance)
	}

	expected := make([][]byte, len(keys))
	for i, key := range keys {
		expected[i] = standardMAC(key, messageID, ts, body)
	}
	for _, versioned := range strings.Fields(signatures) {
		encoded, ok := strings.CutPrefix(versioned, "v1,")
		if !ok {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrStandardSignature
}
