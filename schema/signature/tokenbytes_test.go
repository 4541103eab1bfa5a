package signature_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/roomhook/roomhook/schema/signature"
)

// golangJWTToken is a webhook token made the way golang-jwt makes one from its claim types:
// what Token wrote before it encoded the claims itself.
func golangJWTToken(t *testing.T, c signature.Credentials, body []byte, now time.Time) string {
	t.Helper()
	issued := jwt.NewNumericDate(now.Add(-signature.TokenBackdate))
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, struct {
		jwt.RegisteredClaims
		Sha256 string `json:"sha256,omitempty"`
	}{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.APIKey,
			ExpiresAt: jwt.NewNumericDate(now.Add(signature.TokenLifetime)),
			NotBefore: issued,
			IssuedAt:  issued,
		},
		Sha256: signature.BodyHash(body),
	})
	s, err := tok.SignedString([]byte(c.APISecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenBytesAsGolangJWT: Token's own encoding of the claims gives, byte for byte, the
// token golang-jwt gives, for API keys that JSON must escape and for any instant in a second.
func TestTokenBytesAsGolangJWT(t *testing.T) {
	cases := []struct {
		name string
		key  string
		now  time.Time
	}{
		{"plain key", testKey, time.Unix(1761815000, 0)},
		{"late in the second", testKey, time.Unix(1761815000, 999_999_999)},
		{"key with quote, backslash and HTML", `AP"I\<k>&ey`, time.Unix(1761815000, 1)},
		{"key with control and non-ASCII characters", "API\tkëy\u2028", time.Now()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			creds := signature.Credentials{APIKey: c.key, APISecret: testSecret}
			got, err := signature.Token(creds, testBody, c.now)
			if err != nil {
				t.Fatal(err)
			}
			if want := golangJWTToken(t, creds, testBody, c.now); got != want {
				t.Fatalf("Token differs from golang-jwt's:\n got %s\nwant %s", got, want)
			}
		})
	}
}
