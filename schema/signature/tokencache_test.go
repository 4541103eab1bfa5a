package signature_test

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/webhook"

	"github.com/roomhook/roomhook/schema/signature"
)

// TestTokenCacheReusesOnlyWhatIsTheSame: a cached token is handed out again only for the same
// credentials, body and second, and every token it hands out is the one Token would make,
// which LiveKit's own receiver accepts.
func TestTokenCacheReusesOnlyWhatIsTheSame(t *testing.T) {
	at := time.Now().Truncate(time.Second).Add(300 * time.Millisecond)
	other := signature.Credentials{APIKey: testKey, APISecret: testSecret + "-rotated"}
	otherBody := append(bytes.Clone(testBody), ' ')
	cases := []struct {
		name  string
		creds signature.Credentials
		body  []byte
		now   time.Time
		reuse bool
	}{
		{"same credentials, body and second", testCreds, testBody, at.Add(600 * time.Millisecond), true},
		{"the next second", testCreds, testBody, at.Add(time.Second), false},
		{"another secret", other, testBody, at, false},
		{"another body", testCreds, otherBody, at, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tc signature.TokenCache
			first, err := tc.Token(testCreds, testBody, at)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.Token(c.creds, c.body, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if reused := got == first; reused != c.reuse {
				t.Fatalf("reused = %v, want %v", reused, c.reuse)
			}
			want, err := signature.Token(c.creds, c.body, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("cached token differs from Token's:\n got %s\nwant %s", got, want)
			}
			req, err := http.NewRequest(http.MethodPost, "http://receiver.example/webhook", bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(signature.HeaderAuthorization, got)
			if _, err := webhook.Receive(req, auth.NewSimpleKeyProvider(c.creds.APIKey, c.creds.APISecret)); err != nil {
				t.Fatalf("LiveKit's webhook.Receive refused the cached token: %v", err)
			}
		})
	}
}

func TestTokenCacheNilAndMissingCredentials(t *testing.T) {
	var nilCache *signature.TokenCache
	tok, err := nilCache.Token(testCreds, testBody, time.Now())
	if err != nil || tok == "" {
		t.Fatalf("nil cache: %q, %v", tok, err)
	}
	var tc signature.TokenCache
	if _, err := tc.Token(signature.Credentials{APIKey: testKey}, testBody, time.Now()); err == nil {
		t.Fatal("no secret: no error")
	}
}

// TestTokenCacheConcurrent: attempts of many endpoints share one cache (run with -race).
func TestTokenCacheConcurrent(t *testing.T) {
	var tc signature.TokenCache
	now := time.Now()
	want, err := signature.Token(testCreds, testBody, now)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for range 64 {
		wg.Go(func() {
			for range 100 {
				if got, err := tc.Token(testCreds, testBody, now); err != nil || got != want {
					errs <- got
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Fatalf("a concurrent caller got %q, want %q", got, want)
	}
}

func BenchmarkSignFanOut(b *testing.B) {
	for _, c := range []struct {
		name   string
		tokens *signature.TokenCache
	}{{"uncached", nil}, {"cached", &signature.TokenCache{}}} {
		b.Run(c.name, func(b *testing.B) {
			s := signature.Signer{Credentials: testCreds, Tokens: c.tokens}
			h := http.Header{}
			now := time.Now()
			for b.Loop() {
				if err := s.Sign(h, testBody, "e1", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
