package signature

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// TokenBackdate is how far before now a token's nbf and iat are set, so that
	// receivers with zero leeway (plugNmeet's PHP example) accept it even when
	// their clock lags the sender's by a few seconds.
	TokenBackdate = 5 * time.Second
	// TokenLifetime is how long after now a token expires, as LiveKit and
	// plugNmeet do.
	TokenLifetime = 5 * time.Minute
)

// Credentials are the API key and secret a webhook token is signed with: the
// key goes into the iss claim, the secret is the HS256 key.
type Credentials struct {
	APIKey    string
	APISecret string
}

func (c Credentials) check() error {
	if c.APIKey == "" || c.APISecret == "" {
		return ErrMissingCredentials
	}
	return nil
}

// claims is the payload of a webhook token, in the JSON shape LiveKit's
// verifiers read: registered claims plus sha256.
type claims struct {
	jwt.RegisteredClaims
	Sha256 string `json:"sha256,omitempty"`
}

// BodyHash is the sha256 claim for body: standard, padded base64 of its
// SHA-256 digest.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Token returns the HS256 JWT for one webhook body: iss = APIKey,
// nbf = iat = now - TokenBackdate, exp = now + TokenLifetime, sha256 =
// BodyHash(body). It carries no sub and no grants, like plugNmeet's and
// LiveKit's webhook tokens.
func Token(c Credentials, body []byte, now time.Time) (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	issued := jwt.NewNumericDate(now.Add(-TokenBackdate))
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    c.APIKey,
			ExpiresAt: jwt.NewNumericDate(now.Add(TokenLifetime)),
			NotBefore: issued,
			IssuedAt:  issued,
		},
		Sha256: BodyHash(body),
	})
	signed, err := tok.SignedString([]byte(c.APISecret))
	if err != nil {
		return "", fmt.Errorf("signature: signing token: %w", err)
	}
	return signed, nil
}

// Verifier checks the token of an incoming webhook request the way roomhook's
// receivers should: signature with APISecret, iss = APIKey, exp/nbf/iat within
// Leeway of now, and the sha256 claim against the body bytes as received.
type Verifier struct {
	Credentials
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// DefaultLeeway; a negative value means none.
	Leeway time.Duration
}

func (v Verifier) leeway() time.Duration {
	switch {
	case v.Leeway == 0:
		return DefaultLeeway
	case v.Leeway < 0:
		return 0
	}
	return v.Leeway
}

// Verify checks the request headers h against body at time now. The token is
// read from Authorization (an optional "Bearer " prefix is stripped) or, when
// Authorization is absent or is not a JWT at all (a proxy may replace it),
// from Hash-Token. The error wraps exactly one of ErrMissingCredentials,
// ErrMissingToken, ErrMalformedToken, ErrBadSignature, ErrWrongIssuer,
// ErrExpired, ErrNotYetValid, ErrMissingBodyHash or ErrBodyHashMismatch.
func (v Verifier) Verify(h http.Header, body []byte, now time.Time) error {
	if err := v.check(); err != nil {
		return err
	}
	auth := stripBearer(h.Get(HeaderAuthorization))
	hashToken := strings.TrimSpace(h.Get(HeaderHashToken))
	switch {
	case auth == "" && hashToken == "":
		return ErrMissingToken
	case auth == "":
		return v.verifyToken(hashToken, body, now)
	}
	err := v.verifyToken(auth, body, now)
	if errors.Is(err, ErrMalformedToken) && hashToken != "" && hashToken != auth {
		return v.verifyToken(hashToken, body, now)
	}
	return err
}

func stripBearer(value string) string {
	value = strings.TrimSpace(value)
	if len(value) >= 7 && strings.EqualFold(value[:7], "Bearer ") {
		value = strings.TrimSpace(value[7:])
	}
	return value
}

func (v Verifier) verifyToken(raw string, body []byte, now time.Time) error {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(v.leeway()),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	)

	// The issuer is looked at before the signature: a token for another API
	// key is signed with another secret, and "wrong issuer" tells the operator
	// which setting to fix where "bad signature" would not.
	var unverified claims
	tok, _, err := parser.ParseUnverified(raw, &unverified)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedToken, err)
	}
	if alg := tok.Method.Alg(); alg != jwt.SigningMethodHS256.Alg() {
		return fmt.Errorf("%w: algorithm %q, want HS256", ErrMalformedToken, alg)
	}
	if unverified.Issuer != v.APIKey {
		return fmt.Errorf("%w: got %q", ErrWrongIssuer, unverified.Issuer)
	}

	var verified claims
	_, err = parser.ParseWithClaims(raw, &verified, func(*jwt.Token) (any, error) {
		return []byte(v.APISecret), nil
	})
	if err != nil {
		return classifyJWTError(err)
	}

	if verified.Sha256 == "" {
		return ErrMissingBodyHash
	}
	if subtle.ConstantTimeCompare([]byte(verified.Sha256), []byte(BodyHash(body))) != 1 {
		return fmt.Errorf("%w (%d body bytes)", ErrBodyHashMismatch, len(body))
	}
	return nil
}

// classifyJWTError maps golang-jwt's errors, which may be several joined, to
// the one sentinel that says best why the token was refused. The signature is
// checked first because claims of a token with a bad signature mean nothing.
func classifyJWTError(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		sentinel = ErrMalformedToken
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		sentinel = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		sentinel = ErrWrongIssuer
	case errors.Is(err, jwt.ErrTokenExpired):
		sentinel = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		sentinel = ErrNotYetValid
	default:
		// Missing exp, claims of the wrong type, unusable key.
		sentinel = ErrMalformedToken
	}
	return fmt.Errorf("%w: %v", sentinel, err)
}
