// Package signature signs roomhook's webhook requests and verifies them, side
// by side so the two cannot drift apart.
//
// The primary scheme is plugNmeet's and LiveKit's: an HS256 JWT signed with the
// API secret whose sha256 claim is the base64 SHA-256 of the body, sent in
// Authorization (no "Bearer ") and again in Hash-Token. Receivers built on
// LiveKit's SDKs or plugNmeet's PHP example accept it. The optional second
// scheme is Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature) for endpoints that have a whsec_ secret.
//
// No error text of this package contains a secret or a token.
package signature

import (
	"errors"
	"time"
)

// Sentinel errors. Each names one reason a request is refused or cannot be
// signed; they are returned wrapped with detail, check them with errors.Is.
var (
	// ErrMissingCredentials: the API key or API secret is empty.
	ErrMissingCredentials = errors.New("signature: API key or secret is empty")
	// ErrMissingToken: neither Authorization nor Hash-Token carries a token.
	ErrMissingToken = errors.New("signature: no token in Authorization or Hash-Token")
	// ErrMalformedToken: the token is not a well-formed HS256 JWT with the claims a webhook token has.
	ErrMalformedToken = errors.New("signature: malformed token")
	// ErrBadSignature: the token was not signed with the API secret.
	ErrBadSignature = errors.New("signature: token signature does not match the API secret")
	// ErrWrongIssuer: the token's iss is not the expected API key.
	ErrWrongIssuer = errors.New("signature: token issuer is not the API key")
	// ErrExpired: the token's exp has passed, beyond the leeway.
	ErrExpired = errors.New("signature: token expired")
	// ErrNotYetValid: the token's nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("signature: token not valid yet")
	// ErrMissingBodyHash: the token has no sha256 claim.
	ErrMissingBodyHash = errors.New("signature: token has no sha256 claim")
	// ErrBodyHashMismatch: the body is not the one the token was made for.
	ErrBodyHashMismatch = errors.New("signature: body does not match the token's sha256 claim")

	// ErrStandardMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is missing.
	ErrStandardMissingHeaders = errors.New("signature: missing Standard Webhooks header")
	// ErrStandardTimestamp: webhook-timestamp is not a unix time within the tolerance.
	ErrStandardTimestamp = errors.New("signature: Standard Webhooks timestamp unparsable or outside tolerance")
	// ErrStandardSignature: no v1 signature matches any of the secrets.
	ErrStandardSignature = errors.New("signature: no matching Standard Webhooks signature")
	// ErrBadSecret: a Standard Webhooks secret is not whsec_ followed by base64 key bytes.
	ErrBadSecret = errors.New("signature: invalid Standard Webhooks secret")
)

// Header names written by Signer and read by Verifier and VerifyStandard.
const (
	// HeaderAuthorization carries the JWT, without "Bearer ".
	HeaderAuthorization = "Authorization"
	// HeaderHashToken carries the same JWT, for proxies that strip Authorization.
	HeaderHashToken = "Hash-Token"
	// HeaderWebhookID is the Standard Webhooks message id.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the Standard Webhooks unix timestamp in seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature holds space-separated "v1,<base64>" signatures.
	HeaderWebhookSignature = "webhook-signature"
)

const (
	// DefaultContentType is the Content-Type Signer sets when none is configured,
	// LiveKit's and plugNmeet's (before v1.5.0) webhook content type.
	DefaultContentType = "application/webhook+json"
	// DefaultUserAgent is the User-Agent Signer sets when none is configured.
	DefaultUserAgent = "roomhook"
	// DefaultLeeway is the clock skew Verifier allows when its Leeway is 0.
	DefaultLeeway = 10 * time.Second
	// DefaultStandardTolerance is the webhook-timestamp age VerifyStandard
	// allows when given 0, the Standard Webhooks libraries' default.
	DefaultStandardTolerance = 5 * time.Minute
)
