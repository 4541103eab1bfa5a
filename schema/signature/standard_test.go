package signature_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomhook/roomhook/schema/signature"
)

// The published Standard Webhooks test vector, from the spec's repository
// standard-webhooks/standard-webhooks, libraries/go/webhook_test.go
// (TestWebhookSign; commit 449485caf9c0303530c19524fbe4096680aafcf1).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardVector(t *testing.T) {
	got, err := signature.SignStandard(vectorSecret, vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("SignStandard = %s, want %s", got, vectorSignature)
	}
	h := http.Header{}
	h.Set("webhook-id", vectorMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTimestamp))
	h.Set("webhook-signature", vectorSignature)
	if err := signature.VerifyStandard([]string{vectorSecret}, h, []byte(vectorBody), 0, time.Unix(vectorTimestamp, 0)); err != nil {
		t.Fatalf("VerifyStandard refused the published vector: %v", err)
	}
}

func TestStandardRotation(t *testing.T) {
	const oldSecret = vectorSecret
	const newSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" // 24 random bytes
	now := time.Unix(1761815000, 0)
	h := http.Header{}
	s := signature.Signer{Credentials: testCreds, StandardSecrets: []string{oldSecret, newSecret}}
	if err := s.Sign(h, testBody, "msg_rotation", now); err != nil {
		t.Fatal(err)
	}
	sigs := strings.Split(h.Get("webhook-signature"), " ")
	if len(sigs) != 2 || sigs[0] == sigs[1] || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature = %q, want two distinct v1 signatures", h.Get("webhook-signature"))
	}
	for _, secrets := range [][]string{{oldSecret}, {newSecret}, {newSecret, oldSecret}} {
		if err := signature.VerifyStandard(secrets, h, testBody, 0, now); err != nil {
			t.Errorf("receiver with %d secret(s) refused: %v", len(secrets), err)
		}
	}
	// Each signature alone verifies with its own secret.
	for i, secret := range []string{oldSecret, newSecret} {
		alone := h.Clone()
		alone.Set("webhook-signature", sigs[i])
		if err := signature.VerifyStandard([]string{secret}, alone, testBody, 0, now); err != nil {
			t.Errorf("signature %d alone: %v", i, err)
		}
	}
	stranger := "whsec_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	if err := signature.VerifyStandard([]string{stranger}, h, testBody, 0, now); !errors.Is(err, signature.ErrStandardSignature) {
		t.Errorf("unrelated secret: %v, want ErrStandardSignature", err)
	}
}

func TestVerifyStandardRefuses(t *testing.T) {
	now := time.Unix(1761815000, 0)
	signed := func(ts time.Time) http.Header {
		h := http.Header{}
		s := signature.Signer{Credentials: testCreds, StandardSecrets: []string{vectorSecret}}
		if err := s.Sign(h, testBody, "msg_1", ts); err != nil {
			t.Fatal(err)
		}
		return h
	}
	with := func(h http.Header, key, value string) http.Header {
		h = h.Clone()
		if value == "" {
			h.Del(key)
		} else {
			h.Set(key, value)
		}
		return h
	}
	tampered := []byte(strings.Replace(string(testBody), "room1", "room2", 1))
	valid := signed(now)
	validSig := valid.Get("webhook-signature")

	tests := []struct {
		name    string
		secrets []string
		h       http.Header
		body    []byte
		want    error
	}{
		{"valid", []string{vectorSecret}, valid, testBody, nil},
		{"4 minutes old", []string{vectorSecret}, signed(now.Add(-4 * time.Minute)), testBody, nil},
		{"tampered body", []string{vectorSecret}, valid, tampered, signature.ErrStandardSignature},
		{"old timestamp", []string{vectorSecret}, signed(now.Add(-6 * time.Minute)), testBody, signature.ErrStandardTimestamp},
		{"future timestamp", []string{vectorSecret}, signed(now.Add(6 * time.Minute)), testBody, signature.ErrStandardTimestamp},
		{"timestamp replaced", []string{vectorSecret}, with(valid, "webhook-timestamp", strconv.FormatInt(now.Unix()-1, 10)), testBody, signature.ErrStandardSignature},
		{"id replaced", []string{vectorSecret}, with(valid, "webhook-id", "msg_2"), testBody, signature.ErrStandardSignature},
		{"timestamp not a number", []string{vectorSecret}, with(valid, "webhook-timestamp", "yesterday"), testBody, signature.ErrStandardTimestamp},
		{"no webhook-id", []string{vectorSecret}, with(valid, "webhook-id", ""), testBody, signature.ErrStandardMissingHeaders},
		{"no webhook-timestamp", []string{vectorSecret}, with(valid, "webhook-timestamp", ""), testBody, signature.ErrStandardMissingHeaders},
		{"no webhook-signature", []string{vectorSecret}, with(valid, "webhook-signature", ""), testBody, signature.ErrStandardMissingHeaders},
		{"only another version", []string{vectorSecret}, with(valid, "webhook-signature", "v2,"+strings.TrimPrefix(validSig, "v1,")), testBody, signature.ErrStandardSignature},
		{"garbage next to valid", []string{vectorSecret}, with(valid, "webhook-signature", "v1,!!! v1a "+validSig), testBody, nil},
		{"no secrets", nil, valid, testBody, signature.ErrBadSecret},
		{"secret without prefix", []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, valid, testBody, signature.ErrBadSecret},
		{"secret not base64", []string{"whsec_***"}, valid, testBody, signature.ErrBadSecret},
		{"empty secret key", []string{"whsec_"}, valid, testBody, signature.ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := signature.VerifyStandard(tt.secrets, tt.h, tt.body, 5*time.Minute, now)
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") {
				t.Fatalf("error text contains the secret: %q", err)
			}
		})
	}
}

func TestSignStandardUnpaddedSecret(t *testing.T) {
	// 16 key bytes need padding in base64; some providers print it without.
	padded := "whsec_AAECAwQFBgcICQoLDA0ODw=="
	unpadded := strings.TrimRight(padded, "=")
	a, err := signature.SignStandard(padded, "msg", time.Unix(1, 0), testBody)
	if err != nil {
		t.Fatal(err)
	}
	b, err := signature.SignStandard(unpadded, "msg", time.Unix(1, 0), testBody)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("padded and unpadded secrets sign differently")
	}
}
