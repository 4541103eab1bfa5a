package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/schema/signature"
)

// Config is every setting of roomhook, read from ROOMHOOK_* environment variables.
// The README's configuration table and the Helm chart's values list the same fields.
type Config struct {
	Region string `envconfig:"REGION" default:"default"`

	NATSURL        string        `envconfig:"NATS_URL"`
	NATSCredsFile  string        `envconfig:"NATS_CREDS_FILE"`
	NATSNKeyFile   string        `envconfig:"NATS_NKEY_FILE"`
	NATSUser       string        `envconfig:"NATS_USER"`
	NATSPassword   string        `envconfig:"NATS_PASSWORD"`
	NATSTLSCA      string        `envconfig:"NATS_TLS_CA"`
	NATSTLSCert    string        `envconfig:"NATS_TLS_CERT"`
	NATSTLSKey     string        `envconfig:"NATS_TLS_KEY"`
	EmbeddedListen string        `envconfig:"EMBEDDED_LISTEN" default:"127.0.0.1:4222"`
	DataDir        string        `envconfig:"DATA_DIR" default:"./roomhook-data"`
	StreamMaxAge   time.Duration `envconfig:"STREAM_MAX_AGE" default:"72h"`
	StreamReplicas int           `envconfig:"STREAM_REPLICAS" default:"1"`
	DLQMaxAge      time.Duration `envconfig:"DLQ_MAX_AGE" default:"720h"`
	MaxEventBytes  int           `envconfig:"MAX_EVENT_BYTES" default:"1048576"`

	APIKey    string `envconfig:"API_KEY"`
	APISecret string `envconfig:"API_SECRET"`

	WebhookURLs     []string      `envconfig:"WEBHOOK_URLS"`
	EndpointsFile   string        `envconfig:"ENDPOINTS_FILE"`
	PerRoomWebhooks bool          `envconfig:"PER_ROOM_WEBHOOKS" default:"true"`
	RoomGrace       time.Duration `envconfig:"ROOM_GRACE" default:"10m"`
	RoomTTL         time.Duration `envconfig:"ROOM_TTL" default:"48h"`

	ContentType   string        `envconfig:"CONTENT_TYPE" default:"application/webhook+json"`
	RetrySchedule string        `envconfig:"RETRY_SCHEDULE" default:"0s,1s,5s,30s,2m,10m,30m,1h,3h,6h"`
	RetryJitter   float64       `envconfig:"RETRY_JITTER" default:"0.2"`
	HTTPTimeout   time.Duration `envconfig:"HTTP_TIMEOUT" default:"10s"`

	BreakerFailures     int           `envconfig:"BREAKER_FAILURES" default:"5"`
	BreakerMaxProbeWait time.Duration `envconfig:"BREAKER_MAX_PROBE_WAIT" default:"1m"`

	Partitions    int           `envconfig:"PARTITIONS" default:"8"`
	MaxInFlight   int           `envconfig:"MAX_IN_FLIGHT" default:"256"`
	Takeover      time.Duration `envconfig:"TAKEOVER" default:"10s"`
	ShutdownGrace time.Duration `envconfig:"SHUTDOWN_GRACE" default:"25s"`
	ReplicaID     string        `envconfig:"REPLICA_ID"`

	HTTPAddr  string `envconfig:"HTTP_ADDR" default:":8080"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info"`
}

// Development credentials used when none are configured and NATS is embedded.
const (
	devAPIKey    = "devkey"
	devAPISecret = "devsecret-change-me-devsecret-change-me"
)

var regionPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// LoadConfig reads the environment; a bad value is an error that names its variable.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("ROOMHOOK", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, c.validate()
}

// errConfig names the variable a bad value came from.
func errConfig(variable, format string, args ...any) error {
	return fmt.Errorf("configuration: ROOMHOOK_%s: %s", variable, fmt.Sprintf(format, args...))
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, variable, format string, args ...any) {
		if !ok {
			errs = append(errs, errConfig(variable, format, args...))
		}
	}
	check(regionPattern.MatchString(c.Region), "REGION", "%q must match [a-z0-9-]+", c.Region)
	check(c.StreamMaxAge >= 0, "STREAM_MAX_AGE", "must not be negative")
	check(c.StreamReplicas >= 1 && c.StreamReplicas <= 5, "STREAM_REPLICAS", "must be 1..5, got %d", c.StreamReplicas)
	check(c.DLQMaxAge >= 0, "DLQ_MAX_AGE", "must not be negative")
	check(c.MaxEventBytes > 0, "MAX_EVENT_BYTES", "must be positive, got %d", c.MaxEventBytes)
	check(c.RoomGrace >= 0, "ROOM_GRACE", "must not be negative")
	check(c.RoomTTL > c.RoomGrace, "ROOM_TTL", "must be longer than ROOMHOOK_ROOM_GRACE")
	check(strings.TrimSpace(c.ContentType) != "", "CONTENT_TYPE", "must not be empty")
	check(c.HTTPTimeout > 0, "HTTP_TIMEOUT", "must be positive")
	check(c.BreakerFailures >= 1, "BREAKER_FAILURES", "must be at least 1, got %d", c.BreakerFailures)
	check(c.BreakerMaxProbeWait >= time.Second, "BREAKER_MAX_PROBE_WAIT", "must be at least 1s, got %s", c.BreakerMaxProbeWait)
	check(c.Partitions >= 1 && c.Partitions <= 1024, "PARTITIONS", "must be 1..1024, got %d", c.Partitions)
	check(c.MaxInFlight >= 1, "MAX_IN_FLIGHT", "must be at least 1, got %d", c.MaxInFlight)
	check(c.Takeover >= time.Second, "TAKEOVER", "must be at least 1s, got %s", c.Takeover)
	check(c.ShutdownGrace > 0, "SHUTDOWN_GRACE", "must be positive")
	check(c.LogFormat == "text" || c.LogFormat == "json", "LOG_FORMAT", "must be text or json, got %q", c.LogFormat)
	var lvl slog.Level
	check(lvl.UnmarshalText([]byte(c.LogLevel)) == nil, "LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, errConfig("HTTP_ADDR", "%v", err))
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.EmbeddedListen); err != nil {
			errs = append(errs, errConfig("EMBEDDED_LISTEN", "%v", err))
		}
	} else {
		check(c.APIKey != "", "API_KEY", "is required when ROOMHOOK_NATS_URL is set")
		check(c.APISecret != "", "API_SECRET", "is required when ROOMHOOK_NATS_URL is set")
	}
	check((c.APIKey == "") == (c.APISecret == ""), "API_SECRET", "and ROOMHOOK_API_KEY must be set together")
	check((c.NATSTLSCert == "") == (c.NATSTLSKey == ""), "NATS_TLS_CERT", "and ROOMHOOK_NATS_TLS_KEY must be set together")
	for variable, path := range map[string]string{"NATS_CREDS_FILE": c.NATSCredsFile, "NATS_NKEY_FILE": c.NATSNKeyFile,
		"NATS_TLS_CA": c.NATSTLSCA, "NATS_TLS_CERT": c.NATSTLSCert, "NATS_TLS_KEY": c.NATSTLSKey} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, errConfig(variable, "%v", err))
			}
		}
	}
	if _, err := dispatcher.ParseRetrySchedule(c.RetrySchedule, c.RetryJitter); err != nil {
		variable := "RETRY_SCHEDULE"
		if c.RetryJitter < 0 || c.RetryJitter >= 1 {
			variable = "RETRY_JITTER"
		}
		errs = append(errs, errConfig(variable, "%v", err))
	}
	if _, err := dispatcher.ParseWebhookURLs(c.WebhookURLs); err != nil {
		errs = append(errs, errConfig("WEBHOOK_URLS", "%v", err))
	}
	if c.EndpointsFile != "" {
		// Read it now so that a mistake in the file stops the start with the entry and field
		// named, rather than surfacing later.
		creds, _ := c.credentials()
		if _, err := dispatcher.LoadEndpointsFile(c.EndpointsFile, creds); err != nil {
			errs = append(errs, errConfig("ENDPOINTS_FILE", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// credentials returns the signing credentials, and whether they are the development ones.
func (c Config) credentials() (signature.Credentials, bool) {
	if c.APIKey == "" && c.APISecret == "" {
		return signature.Credentials{APIKey: devAPIKey, APISecret: devAPISecret}, true
	}
	return signature.Credentials{APIKey: c.APIKey, APISecret: c.APISecret}, false
}

// dispatcherConfig maps the settings onto the dispatcher's.
func (c Config) dispatcherConfig(replicaID string, endpoints []dispatcher.Endpoint) dispatcher.Config {
	schedule, _ := dispatcher.ParseRetrySchedule(c.RetrySchedule, c.RetryJitter)
	creds, _ := c.credentials()
	return dispatcher.Config{
		Region: c.Region, Partitions: c.Partitions, MaxInFlight: c.MaxInFlight, Takeover: c.Takeover,
		MaxEventBytes: c.MaxEventBytes, PerRoomWebhooks: c.PerRoomWebhooks, RoomGrace: c.RoomGrace,
		RoomTTL: c.RoomTTL, StreamMaxAge: c.StreamMaxAge, DLQMaxAge: c.DLQMaxAge,
		StreamReplicas: c.StreamReplicas, Retry: schedule, Credentials: creds,
		Endpoints: endpoints, ReplicaID: replicaID,
		BreakerFailures: c.BreakerFailures, MaxProbeWait: c.BreakerMaxProbeWait,
	}
}
