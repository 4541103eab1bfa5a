package endpoint_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/roomhook/roomhook/endpoint"
)

func TestEndpointID(t *testing.T) {
	// IDs are stored in the endpoint registry and name deliver subjects, so they must never
	// change between versions. Golden values from `printf %s URL | sha256sum | cut -c1-16`.
	golden := map[string]string{
		"https://example.com/hook":          "19f1352238b91533",
		"http://127.0.0.1:8080/webhook?x=1": "e498273898f011ff",
		"https://example.com/hook/":         "",
	}
	token := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]string{}
	for url, want := range golden {
		got := endpoint.ID(url)
		if !token.MatchString(got) {
			t.Errorf("ID(%q) = %q, want 16 lower-case hex characters", url, got)
		}
		if want != "" && got != want {
			t.Errorf("ID(%q) = %q, want %q", url, got, want)
		}
		if again := endpoint.ID(url); again != got {
			t.Errorf("ID(%q) not stable: %q then %q", url, got, again)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("ID(%q) = ID(%q) = %q", url, other, got)
		}
		seen[got] = url
	}
}

func TestEndpointFilterAllows(t *testing.T) {
	tests := []struct {
		name   string
		filter endpoint.EventFilter
		event  string
		want   bool
	}{
		{"empty filter allows all", endpoint.EventFilter{}, "room_started", true},
		{"included", endpoint.EventFilter{Include: []string{"room_started", "room_finished"}}, "room_finished", true},
		{"not included", endpoint.EventFilter{Include: []string{"room_started"}}, "participant_joined", false},
		{"excluded", endpoint.EventFilter{Exclude: []string{"track_published"}}, "track_published", false},
		{"not excluded", endpoint.EventFilter{Exclude: []string{"track_published"}}, "track_unpublished", true},
		{"exclude wins over include", endpoint.EventFilter{
			Include: []string{"track_published"}, Exclude: []string{"track_published"}}, "track_published", false},
		{"names are exact", endpoint.EventFilter{Include: []string{"room"}}, "room_started", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Allows(tt.event); got != tt.want {
				t.Errorf("%+v.Allows(%q) = %v, want %v", tt.filter, tt.event, got, tt.want)
			}
		})
	}
}

func TestEndpointParseWebhookURLs(t *testing.T) {
	tests := []struct {
		name      string
		in        []string
		want      []string
		errNames  string // the error must name this
		errHidden string // and must not contain this
	}{
		{name: "nil", in: nil, want: []string{}},
		{name: "trims and drops empties",
			in:   []string{" https://a.example/hook ", "", "  ", "http://b.example:8080/x?token=1"},
			want: []string{"https://a.example/hook", "http://b.example:8080/x?token=1"}},
		{name: "dedups keeping first order",
			in:   []string{"https://b.example/", "https://a.example/", "https://b.example/"},
			want: []string{"https://b.example/", "https://a.example/"}},
		{name: "scheme and host case do not make another endpoint",
			in:   []string{"HTTPS://Hooks.Example.COM/Path", "https://hooks.example.com/Path"},
			want: []string{"https://hooks.example.com/Path"}},
		{name: "path case is kept", in: []string{"https://a.example/A", "https://a.example/a"},
			want: []string{"https://a.example/A", "https://a.example/a"}},
		{name: "ipv6 host", in: []string{"http://[::1]:9000/hook"}, want: []string{"http://[::1]:9000/hook"}},
		{name: "no scheme", in: []string{"https://ok.example/", "hooks.example.com/x"}, errNames: "hooks.example.com/x"},
		{name: "other scheme", in: []string{"ftp://files.example/hook"}, errNames: "ftp://files.example/hook"},
		{name: "no host", in: []string{"https:///hook"}, errNames: "https:///hook"},
		{name: "port only", in: []string{"http://:8080/hook"}, errNames: "http://:8080/hook"},
		{name: "unparsable", in: []string{"http://bad host.example/"}, errNames: "bad host.example"},
		{name: "user info refused and redacted", in: []string{"https://user:hunter2@hooks.example/x"},
			errNames: "hooks.example/x", errHidden: "hunter2"},
		{name: "unparsable with password redacted", in: []string{"https://user:hunter2@bad host/x"},
			errNames: "bad host/x", errHidden: "hunter2"},
		{name: "query token kept out of the error", in: []string{"ftp://files.example/h?token=hunter3"},
			errNames: "ftp://files.example/h", errHidden: "hunter3"},
		{name: "port out of range", in: []string{"http://hooks.example:99999/h?token=hunter4"},
			errNames: "port 99999", errHidden: "hunter4"},
		{name: "unparsable with a query token", in: []string{"https://exa mple.com/hook?token=hunter5"},
			errNames: `"https://exa mple.com/hook": not a URL`, errHidden: "hunter5"},
		{name: "unparsable with a fragment token", in: []string{"https://exa mple.com/hook#access_token=hunter6"},
			errNames: `"https://exa mple.com/hook": not a URL`, errHidden: "hunter6"},
		{name: "unparsable with a password and a query token", in: []string{"https://u:hunter7@exa mple.com/h?token=hunter8"},
			errNames: `"https://xxxxx@exa mple.com/h": not a URL`, errHidden: "hunter"},
		{name: "unparsable with a '/' in the password", in: []string{"https://u:hun/ter9@exa mple.com/h"},
			errNames: "exa mple.com/h", errHidden: "ter9"},
		{name: "unparsable with an '@' in the query", in: []string{"https://exa mple.com/h?to=a@b.example&token=hunter10"},
			errNames: "not a URL", errHidden: "hunter10"},
		{name: "opaque with user info", in: []string{"https:u:hunter11@hooks.example/x"},
			errNames: "hooks.example/x", errHidden: "hunter11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := endpoint.ParseWebhookURLs(tt.in)
			if tt.errNames != "" {
				if err == nil {
					t.Fatalf("ParseWebhookURLs(%q) = %q, want an error", tt.in, got)
				}
				if !errors.Is(err, endpoint.ErrInvalidURL) {
					t.Errorf("error %v does not wrap ErrInvalidURL", err)
				}
				if !strings.Contains(err.Error(), tt.errNames) {
					t.Errorf("error %q does not name %q", err, tt.errNames)
				}
				if tt.errHidden != "" && strings.Contains(err.Error(), tt.errHidden) {
					t.Errorf("error %q leaks %q", err, tt.errHidden)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebhookURLs(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ParseWebhookURLs(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func ExampleParseWebhookURLs() {
	urls, err := endpoint.ParseWebhookURLs([]string{" https://Hooks.Example.com/lms ", "", "https://hooks.example.com/lms"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(urls)
	_, err = endpoint.ParseWebhookURLs([]string{"hooks.example.com/lms"})
	fmt.Println(err)
	// Output:
	// [https://hooks.example.com/lms]
	// invalid webhook URL "hooks.example.com/lms": scheme must be http or https
}

func ExampleEventFilter_Allows() {
	f := endpoint.EventFilter{Exclude: []string{"track_published", "track_unpublished"}}
	fmt.Println(f.Allows("room_started"), f.Allows("track_published"))
	// Output: true false
}

func TestEndpointValidateRoomURL(t *testing.T) {
	long := "https://hooks.example/" + strings.Repeat("a", endpoint.MaxRoomURLBytes)
	tests := []struct {
		name   string
		in     string
		want   string // canonical URL when valid
		reason string // URLReason* when refused
	}{
		{name: "https", in: "https://Hooks.Example/lms?token=t1", want: "https://hooks.example/lms?token=t1"},
		{name: "http with port", in: " http://hooks.example:8080/x ", want: "http://hooks.example:8080/x"},
		{name: "highest port", in: "http://hooks.example:65535/", want: "http://hooks.example:65535/"},
		{name: "ipv6", in: "http://[2001:db8::1]:9000/h", want: "http://[2001:db8::1]:9000/h"},
		{name: "exactly the limit", in: long[:endpoint.MaxRoomURLBytes], want: long[:endpoint.MaxRoomURLBytes]},
		{name: "over the limit", in: long, reason: endpoint.URLReasonTooLong},
		{name: "port too big", in: "http://127.0.0.1:99999", reason: endpoint.URLReasonInvalid},
		{name: "port zero", in: "http://hooks.example:0/", reason: endpoint.URLReasonInvalid},
		{name: "no host", in: "https:///hook", reason: endpoint.URLReasonInvalid},
		{name: "port only", in: "http://:80/", reason: endpoint.URLReasonInvalid},
		{name: "user info", in: "https://u:hunter2@hooks.example/", reason: endpoint.URLReasonInvalid},
		{name: "not a URL", in: "http://bad host/?token=t2", reason: endpoint.URLReasonInvalid},
		{name: "relative", in: "/hook", reason: endpoint.URLReasonInvalid},
		{name: "file scheme", in: "file:///etc/passwd", reason: endpoint.URLReasonForbiddenScheme},
		{name: "gopher", in: "gopher://hooks.example:70/", reason: endpoint.URLReasonForbiddenScheme},
		{name: "empty", in: "  ", reason: endpoint.URLReasonInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := endpoint.ValidateRoomURL(tt.in)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ValidateRoomURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			var ue *endpoint.RoomURLError
			if !errors.As(err, &ue) || !errors.Is(err, endpoint.ErrInvalidURL) {
				t.Fatalf("ValidateRoomURL(%q) = %q, %v; want a RoomURLError", tt.in, got, err)
			}
			if ue.Reason != tt.reason {
				t.Errorf("reason %q, want %q (%v)", ue.Reason, tt.reason, err)
			}
			for _, secret := range []string{"hunter2", "token=", "t2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
		})
	}
}

func TestEndpointRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.example/lms", "https://hooks.example/lms"},
		{"https://hooks.example:8443/lms?token=s3cr3t&x=1", "https://hooks.example:8443/lms"},
		{"https://user:pw@hooks.example/a#frag", "https://hooks.example/a"},
		{"https://hooks.example/a?", "https://hooks.example/a"},
		{"http://[::1]:9000/h?k=v", "http://[::1]:9000/h"},
		{"http://u:pw@bad host/p?token=s3cr3t", "http://xxxxx@bad host/p"},
		{"not a url %zz?token=s3cr3t", "not a url %zz"},
		{"https://exa mple.com/hook?token=s3cr3t", "https://exa mple.com/hook"},
		{"https://exa mple.com/hook#token=s3cr3t", "https://exa mple.com/hook"},
		{"http://u:pw#s3cr3t@bad host/p", "http://xxxxx"}, // an '@' after '#': a password's or a fragment's
		{"http://u:pw?s3cr3t@bad host/p?token=s3cr3t", "http://xxxxx"},
		{"http://u:pw/s3cr3t@bad host/p", "http://xxxxx@bad host/p"},
		{"http://bad host/p?to=a@b.example&token=s3cr3t", "http://xxxxx"},
		{"u:s3cr3t@bad host/p?x", "u:xxxxx@bad host/p"}, // parses: scheme u, opaque
		{"https:u:s3cr3t@hooks.example/p?token=s3cr3t", "https:xxxxx@hooks.example/p"},
		{"://bad?secret=1", "://bad"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := endpoint.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
