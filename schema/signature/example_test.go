package signature_test

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/roomhook/roomhook/schema/signature"
)

func ExampleSigner_Sign() {
	signer := signature.Signer{
		Credentials:     signature.Credentials{APIKey: "APIkey", APISecret: "secret"},
		StandardSecrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	}
	body := []byte(`{"event":"room_started","room":{"room_id":"room1"},"id":"e1","created_at":"1761815000"}`)
	req, _ := http.NewRequest(http.MethodPost, "https://receiver.example/webhook", nil)
	if err := signer.Sign(req.Header, body, "e1", time.Unix(1761815000, 0)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Hash-Token equals Authorization:", req.Header.Get("Hash-Token") == req.Header.Get("Authorization"))
	fmt.Println("Content-Type:", req.Header.Get("Content-Type"))
	fmt.Println("webhook-id:", req.Header.Get("webhook-id"))
	fmt.Println("webhook-timestamp:", req.Header.Get("webhook-timestamp"))
	fmt.Println("webhook-signature:", req.Header.Get("webhook-signature"))
	// Output:
	// Hash-Token equals Authorization: true
	// Content-Type: application/webhook+json
	// webhook-id: e1
	// webhook-timestamp: 1761815000
	// webhook-signature: v1,9bC0ysxNs8ywa3y7ngH/Pe0/06xPUza0cvQ2lxgnHOs=
}

func ExampleVerifier_Verify() {
	creds := signature.Credentials{APIKey: "APIkey", APISecret: "secret"}
	body := []byte(`{"event":"room_started","room":{"room_id":"room1"}}`)
	sentAt := time.Unix(1761815000, 0)

	h := http.Header{}
	if err := (signature.Signer{Credentials: creds}).Sign(h, body, "e1", sentAt); err != nil {
		fmt.Println(err)
		return
	}

	// The receiver: same credentials, the raw body bytes, its own clock.
	verifier := signature.Verifier{Credentials: creds}
	fmt.Println("valid:", verifier.Verify(h, body, sentAt.Add(2*time.Second)))

	altered := []byte(`{"event":"room_started","room":{"room_id":"room2"}}`)
	err := verifier.Verify(h, altered, sentAt.Add(2*time.Second))
	fmt.Println("altered body refused:", errors.Is(err, signature.ErrBodyHashMismatch))

	err = verifier.Verify(h, body, sentAt.Add(time.Hour))
	fmt.Println("an hour later refused:", errors.Is(err, signature.ErrExpired))
	// Output:
	// valid: <nil>
	// altered body refused: true
	// an hour later refused: true
}

func ExampleTokenCache() {
	creds := signature.Credentials{APIKey: "APIkey", APISecret: "secret"}
	body := []byte(`{"event":"room_started","room":{"room_id":"room1"}}`)
	var tokens signature.TokenCache // one per sender, shared by all its endpoints
	at := time.Unix(1761815000, 0)

	first, _ := tokens.Token(creds, body, at)
	again, _ := tokens.Token(creds, body, at.Add(500*time.Millisecond))
	later, _ := tokens.Token(creds, body, at.Add(time.Second))
	fmt.Println("same second, same token:", first == again)
	fmt.Println("next second, new token:", later != first)
	// Output:
	// same second, same token: true
	// next second, new token: true
}
