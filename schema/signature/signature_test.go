package signature_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/schema/signature"
)

const (
	testKey    = "APIroomhookTest"
	testSecret = "s3cr3t-that-must-never-appear-in-errors-0123456789"
)

var (
	testCreds = signature.Credentials{APIKey: testKey, APISecret: testSecret}
	testBody  = []byte(`{"event":"participant_joined","room":{"sid":"RM_1","room_id":"room1"},"id":"4f7c6f1e-0000-4000-8000-000000000001","created_at":"1761815000"}`)
)

func TestTokenClaims(t *testing.T) {
	now := time.Unix(1761815000, 0)
	token, err := signature.Token(testCreds, testBody, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	if header["alg"] != "HS256" {
		t.Errorf("alg = %v, want HS256", header["alg"])
	}
	var payload map[string]any
	decodeSegment(t, parts[1], &payload)
	want := map[string]any{
		"iss":    testKey,
		"nbf":    float64(now.Unix() - 5),
		"iat":    float64(now.Unix() - 5),
		"exp":    float64(now.Unix() + 300),
		"sha256": signature.BodyHash(testBody),
	}
	if len(payload) != len(want) {
		t.Errorf("claims %v, want exactly %v", payload, want)
	}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("claim %s = %v, want %v", k, payload[k], v)
		}
	}
	// The sha256 claim is standard padded base64 of the digest, not hex.
	sum, err := base64.StdEncoding.DecodeString(payload["sha256"].(string))
	if err != nil || len(sum) != 32 {
		t.Errorf("sha256 claim is not std base64 of 32 bytes: %v", err)
	}
}

func decodeSegment(t *testing.T, segment string, into any) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

func TestSignHeaders(t *testing.T) {
	now := time.Unix(1761815000, 0)
	tests := []struct {
		name                string
		signer              signature.Signer
		contentType, agent  string
		wantStandardHeaders bool
	}{
		{"defaults", signature.Signer{Credentials: testCreds}, "application/webhook+json", "roomhook", false},
		{"overrides", signature.Signer{Credentials: testCreds, ContentType: "application/json", UserAgent: "roomhook/1.2.3"}, "application/json", "roomhook/1.2.3", false},
		{"standard", signature.Signer{Credentials: testCreds, StandardSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, "application/webhook+json", "roomhook", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if err := tt.signer.Sign(h, testBody, "msg_1", now); err != nil {
				t.Fatal(err)
			}
			auth := h.Get("Authorization")
			if auth == "" || strings.HasPrefix(auth, "Bearer") {
				t.Errorf("Authorization = %q, want a bare JWT", auth)
			}
			if h.Get("Hash-Token") != auth {
				t.Errorf("Hash-Token differs from Authorization")
			}
			if got := h.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := h.Get("User-Agent"); got != tt.agent {
				t.Errorf("User-Agent = %q, want %q", got, tt.agent)
			}
			hasStandard := h.Get("webhook-id") != "" || h.Get("webhook-timestamp") != "" || h.Get("webhook-signature") != ""
			if hasStandard != tt.wantStandardHeaders {
				t.Fatalf("Standard Webhooks headers present = %v, want %v", hasStandard, tt.wantStandardHeaders)
			}
			if tt.wantStandardHeaders {
				if h.Get("webhook-id") != "msg_1" || h.Get("webhook-timestamp") != strconv.FormatInt(now.Unix(), 10) {
					t.Errorf("webhook-id %q, webhook-timestamp %q", h.Get("webhook-id"), h.Get("webhook-timestamp"))
				}
			}
		})
	}
}

func TestSignErrorsLeaveHeadersUntouched(t *testing.T) {
	tests := []struct {
		name   string
		signer signature.Signer
		msgID  string
		want   error
	}{
		{"no secret", signature.Signer{Credentials: signature.Credentials{APIKey: testKey}}, "msg_1", signature.ErrMissingCredentials},
		{"no key", signature.Signer{Credentials: signature.Credentials{APISecret: testSecret}}, "msg_1", signature.ErrMissingCredentials},
		{"bad standard secret", signature.Signer{Credentials: testCreds, StandardSecrets: []string{"not-a-whsec"}}, "msg_1", signature.ErrBadSecret},
		{"standard without message id", signature.Signer{Credentials: testCreds, StandardSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}, "", signature.ErrStandardMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			err := tt.signer.Sign(h, testBody, tt.msgID, time.Now())
			if !errors.Is(err, tt.want) {
				t.Fatalf("Sign error %v, want %v", err, tt.want)
			}
			if len(h) != 0 {
				t.Fatalf("Sign set headers despite the error: %v", h)
			}
		})
	}
}

// verdict is what the loopback receiver concluded about one request.
type verdict struct {
	ours, liveKit error
}

// newReceiver starts a real HTTP server on loopback that verifies every POST
// with our Verifier and with LiveKit's webhook.Receive, and reports both.
func newReceiver(t *testing.T) (string, <-chan verdict) {
	t.Helper()
	verdicts := make(chan verdict, 1)
	verifier := signature.Verifier{Credentials: testCreds}
	provider := auth.NewSimpleKeyProvider(testKey, testSecret)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading body: %v", err)
			return
		}
		ours := verifier.Verify(r.Header, body, time.Now())
		r.Body = io.NopCloser(bytes.NewReader(body))
		_, liveKit := webhook.Receive(r, provider)
		verdicts <- verdict{ours: ours, liveKit: liveKit}
		if ours != nil || liveKit != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, verdicts
}

func post(t *testing.T, url string, h http.Header, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestLiveKitAndOursAgree(t *testing.T) {
	url, verdicts := newReceiver(t)
	tampered := bytes.Clone(testBody)
	tampered[len(tampered)/2] ^= 0x01

	tests := []struct {
		name     string
		creds    signature.Credentials
		signedAt time.Duration // relative to now
		send     []byte
		ours     error // nil: accepted
		liveKit  bool  // LiveKit's receiver accepts
	}{
		{"valid", testCreds, 0, testBody, nil, true},
		{"changed body byte", testCreds, 0, tampered, signature.ErrBodyHashMismatch, false},
		{"wrong secret", signature.Credentials{APIKey: testKey, APISecret: "another-secret"}, 0, testBody, signature.ErrBadSignature, false},
		{"wrong issuer", signature.Credentials{APIKey: "APIother", APISecret: testSecret}, 0, testBody, signature.ErrWrongIssuer, false},
		// Beyond LiveKit's one-minute leeway too.
		{"expired", testCreds, -10 * time.Minute, testBody, signature.ErrExpired, false},
		// LiveKit's one-minute leeway accepts what our 10 s leeway refuses.
		{"from the future", testCreds, time.Minute, testBody, signature.ErrNotYetValid, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			s := signature.Signer{Credentials: tt.creds}
			if err := s.Sign(h, testBody, "msg_1", time.Now().Add(tt.signedAt)); err != nil {
				t.Fatal(err)
			}
			post(t, url, h, tt.send)
			got := <-verdicts
			t.Logf("ours: %v; LiveKit: %v", got.ours, got.liveKit)
			if tt.ours == nil && got.ours != nil {
				t.Errorf("ours refused: %v", got.ours)
			}
			if tt.ours != nil && !errors.Is(got.ours, tt.ours) {
				t.Errorf("ours: %v, want %v", got.ours, tt.ours)
			}
			if got.ours != nil {
				assertNoSecrets(t, got.ours, h.Get("Authorization"))
			}
			if tt.liveKit && got.liveKit != nil {
				t.Errorf("LiveKit refused: %v", got.liveKit)
			}
			if !tt.liveKit && got.liveKit == nil {
				t.Errorf("LiveKit accepted")
			}
		})
	}
}

func TestLiveKitReceiveOnRequest(t *testing.T) {
	h := http.Header{}
	if err := (signature.Signer{Credentials: testCreds}).Sign(h, testBody, "msg_1", time.Now()); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, "http://receiver.example/webhook", bytes.NewReader(testBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	data, err := webhook.Receive(req, auth.NewSimpleKeyProvider(testKey, testSecret))
	if err != nil {
		t.Fatalf("LiveKit's webhook.Receive: %v", err)
	}
	if !bytes.Equal(data, testBody) {
		t.Fatalf("LiveKit returned other bytes")
	}
}

func assertNoSecrets(t *testing.T, err error, token string) {
	t.Helper()
	text := err.Error()
	if strings.Contains(text, testSecret) || strings.Contains(text, "another-secret") {
		t.Errorf("error text contains a secret: %q", text)
	}
	if token != "" && strings.Contains(text, token) {
		t.Errorf("error text contains the token: %q", text)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) > 8 && strings.Contains(text, part) {
			t.Errorf("error text contains part of the token: %q", text)
		}
	}
}

func TestVerifyTokenSources(t *testing.T) {
	now := time.Unix(1761815000, 0)
	token, err := signature.Token(testCreds, testBody, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers map[string]string
		want    error
	}{
		{"Authorization", map[string]string{"Authorization": token}, nil},
		{"Authorization with Bearer", map[string]string{"Authorization": "Bearer " + token}, nil},
		{"Hash-Token only", map[string]string{"Hash-Token": token}, nil},
		{"Authorization replaced by a proxy", map[string]string{"Authorization": "Basic dXNlcjpwYXNz", "Hash-Token": token}, nil},
		{"none", map[string]string{}, signature.ErrMissingToken},
		{"garbage", map[string]string{"Authorization": "not.a.jwt"}, signature.ErrMalformedToken},
		{"Hash-Token garbage", map[string]string{"Hash-Token": "xyz"}, signature.ErrMalformedToken},
	}
	v := signature.Verifier{Credentials: testCreds}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, val := range tt.headers {
				h.Set(k, val)
			}
			err := v.Verify(h, testBody, now)
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyClockLeeway(t *testing.T) {
	signedAt := time.Unix(1761815000, 0)
	token, err := signature.Token(testCreds, testBody, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {token}}
	tests := []struct {
		name     string
		leeway   time.Duration
		verifyAt time.Duration // relative to signedAt
		want     error
	}{
		{"at signing", 0, 0, nil},
		{"just before exp plus default leeway", 0, 5*time.Minute + 9*time.Second, nil},
		{"after exp plus default leeway", 0, 5*time.Minute + 11*time.Second, signature.ErrExpired},
		// nbf is signedAt-5s: with the default 10 s a receiver 14 s behind accepts.
		{"receiver clock 14s behind", 0, -14 * time.Second, nil},
		{"receiver clock 16s behind", 0, -16 * time.Second, signature.ErrNotYetValid},
		// The backdating is what lets a zero-leeway receiver (plugNmeet's PHP
		// example) accept while its clock lags a few seconds.
		{"no leeway, clock 4s behind", -1, -4 * time.Second, nil},
		{"no leeway, clock 6s behind", -1, -6 * time.Second, signature.ErrNotYetValid},
		{"no leeway, after exp", -1, 5*time.Minute + time.Second, signature.ErrExpired},
		{"custom leeway", time.Minute, 5*time.Minute + 50*time.Second, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := signature.Verifier{Credentials: testCreds, Leeway: tt.leeway}
			err := v.Verify(h, testBody, signedAt.Add(tt.verifyAt))
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyHandMadeTokens(t *testing.T) {
	now := time.Unix(1761815000, 0)
	good := jwt.MapClaims{
		"iss":    testKey,
		"nbf":    now.Unix(),
		"iat":    now.Unix(),
		"exp":    now.Add(time.Minute).Unix(),
		"sha256": signature.BodyHash(testBody),
	}
	without := func(claim string) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			if k != claim {
				c[k] = v
			}
		}
		return c
	}
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"good", sign(jwt.SigningMethodHS256, []byte(testSecret), good), nil},
		{"no sha256", sign(jwt.SigningMethodHS256, []byte(testSecret), without("sha256")), signature.ErrMissingBodyHash},
		{"no exp", sign(jwt.SigningMethodHS256, []byte(testSecret), without("exp")), signature.ErrMalformedToken},
		{"no iss", sign(jwt.SigningMethodHS256, []byte(testSecret), without("iss")), signature.ErrWrongIssuer},
		{"HS512", sign(jwt.SigningMethodHS512, []byte(testSecret), good), signature.ErrMalformedToken},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), signature.ErrMalformedToken},
		{"sha256 as hex", sign(jwt.SigningMethodHS256, []byte(testSecret), func() jwt.MapClaims {
			c := without("sha256")
			c["sha256"] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
			return c
		}()), signature.ErrBodyHashMismatch},
	}
	v := signature.Verifier{Credentials: testCreds}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(http.Header{"Authorization": {tt.token}}, testBody, now)
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil {
				assertNoSecrets(t, err, tt.token)
			}
		})
	}
}

func TestVerifierNeedsCredentials(t *testing.T) {
	token, err := signature.Token(testCreds, testBody, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []signature.Credentials{{APIKey: testKey}, {APISecret: testSecret}, {}} {
		err := signature.Verifier{Credentials: c}.Verify(http.Header{"Authorization": {token}}, testBody, time.Now())
		if !errors.Is(err, signature.ErrMissingCredentials) {
			t.Errorf("credentials %+v: got %v, want ErrMissingCredentials", c.APIKey, err)
		}
	}
	if _, err := signature.Token(signature.Credentials{APIKey: testKey}, testBody, time.Now()); !errors.Is(err, signature.ErrMissingCredentials) {
		t.Errorf("Token without secret: %v", err)
	}
}
