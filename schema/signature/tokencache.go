package signature

import (
	"sync"
	"time"
)

// maxCachedTokens bounds a TokenCache: past it the cache starts over, so its memory does not
// follow the event rate.
const maxCachedTokens = 4096

// TokenCache reuses webhook tokens. A token's claims are its API key, its times in whole
// seconds and its body's hash, nothing of the receiver, so every endpoint with the same
// credentials that gets the same body within one second gets the very same token: fanning one
// event out to many endpoints signs it once. The zero value is ready to use, a nil
// *TokenCache signs every time, and it is safe for concurrent use.
type TokenCache struct {
	mu     sync.Mutex
	second int64
	tokens map[tokenKey]string
}

type tokenKey struct {
	apiKey, apiSecret, bodyHash string
}

// Token is Token(c, body, now), taken from the cache when one was made for the same
// credentials and body in now's second.
func (tc *TokenCache) Token(c Credentials, body []byte, now time.Time) (string, error) {
	if tc == nil {
		return Token(c, body, now)
	}
	if err := c.check(); err != nil {
		return "", err
	}
	hash := BodyHash(body)
	key := tokenKey{c.APIKey, c.APISecret, hash}
	second := now.Unix()
	tc.mu.Lock()
	if tc.second == second {
		if tok, ok := tc.tokens[key]; ok {
			tc.mu.Unlock()
			return tok, nil
		}
	}
	tc.mu.Unlock()
	tok, err := signToken(c, hash, now)
	if err != nil {
		return "", err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	switch {
	case second < tc.second:
		return tok, nil // a late caller: the cache has moved on
	case second > tc.second || len(tc.tokens) >= maxCachedTokens:
		if tc.tokens == nil {
			tc.tokens = make(map[tokenKey]string)
		}
		clear(tc.tokens)
		tc.second = second
	}
	tc.tokens[key] = tok
	return tok, nil
}
