package receiver_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/roomhook/roomhook/receiver"
	"github.com/roomhook/roomhook/schema/signature"
)

func ExampleReceiver() {
	creds := signature.Credentials{APIKey: "key", APISecret: "secret-secret-secret-secret-secret"}
	rc, err := receiver.New(receiver.Options{Credentials: creds})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	post := func(body, signed string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhook", bytes.NewReader([]byte(body)))
		_ = signature.Signer{Credentials: creds}.Sign(req.Header, []byte(signed), "", time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	third := `{"event":"participant_joined","room":{"room_id":"demo-1"},"id":"rh-demo-1-3"}`
	second := `{"event":"room_started","room":{"room_id":"demo-1"},"id":"rh-demo-1-2"}`
	fmt.Println(post(third, third))
	fmt.Println(post(second, second))                // an earlier event after a later one
	fmt.Println(post(`{"event":"tampered"}`, third)) // body changed after signing
	fmt.Println(rc.Stats())
	// Output:
	// 200
	// 200
	// 401
	// received 3, verified 2, accepted 2, failed (injected) 0, rejected 1, duplicates 0, out of order 1 (body hash mismatch: 1)
}
