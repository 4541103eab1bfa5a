package signature

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	return signToken(c, BodyHash(body), now)
}

// signToken is Token for a body whose BodyHash is bodyHash.
//
// It writes the claims segment itself, in the bytes golang-jwt's json.Marshal of claims would
// give (TestTokenBytesAsGolangJWT), and leaves the HMAC to golang-jwt: the reflection of
// json.Marshal and the buffers around it were most of the cost of signing, and a webhook is
// signed once per attempt.
func signToken(c Credentials, bodyHash string, now time.Time) (string, error) {
	iss, err := json.Marshal(c.APIKey)
	if err != nil {
		return "", fmt.Errorf("signature: signing token: %w", err)
	}
	issued := now.Add(-TokenBackdate).Unix()
	payload := make([]byte, 0, 64+len(iss)+len(bodyHash))
	payload = append(payload, `{"iss":`...)
	payload = append(payload, iss...)
	payload = append(payload, `,"exp":`...)
	payload = strconv.AppendInt(payload, now.Add(TokenLifetime).Unix(), 10)
	payload = append(payload, `,"nbf":`...)
	payload = strconv.AppendInt(payload, issued, 10)
	payload = append(payload, `,"iat":`...)
	payload = strconv.AppendInt(payload, issued, 10)
	payload = append(payload, `,"sha256":`...)
	payload = strconv.AppendQuote(payload, bodyHash) // base64: nothing to escape
	payload = append(payload, '}')

	enc := base64.RawURLEncoding
	signing := make([]byte, 0, len(tokenHeader)+1+enc.EncodedLen(len(payload)))
	signing = append(signing, tokenHeader...)
	signing = append(signing, '.')
	signing = enc.AppendEncode(signing, payload)
	sig, err := jwt.SigningMethodHS256.Sign(string(signing), []byte(c.APISecret))
	if err != nil {
		return "", fmt.Errorf("signature: signing token: %w", err)
	}
	out := make([]byte, 0, len(signing)+1+enc.EncodedLen(len(sig)))
	out = append(out, signing...)
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out), nil
}

// tokenHeader is the first segment of every webhook token, {"alg":"HS256","typ":"JWT"} as
// golang-jwt encodes it.
const tokenHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

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
	// No WithValidMethods: the key function refuses every algorithm but HS256 itself, so that
	// a token of another algorithm reads as malformed rather than badly signed.
	parser := jwt.NewParser(
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(v.leeway()),
		jwt.WithIssuedAt(),
		jwt.WithExpirationRequired(),
	)

	// One parse: the key function runs on the decoded, not yet verified claims. The issuer is
	// looked at before the signature: a token for another API key is signed with another
	// secret, and "wrong issuer" tells the operator which setting to fix where "bad
	// signature" would not.
	var verified claims
	var refused error // the key function's own verdict, returned as it is
	_, err := parser.ParseWithClaims(raw, &verified, func(tok *jwt.Token) (any, error) {
		switch alg := tok.Method.Alg(); {
		case alg != jwt.SigningMethodHS256.Alg():
			refused = fmt.Errorf("%w: algorithm %q, want HS256", ErrMalformedToken, alg)
		case verified.Issuer != v.APIKey:
			refused = fmt.Errorf("%w: got %q", ErrWrongIssuer, verified.Issuer)
		default:
			return []byte(v.APISecret), nil
		}
		return nil, refused
	})
	if refused != nil {
		return refused
	}
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
