package main

import (
	"fmt"
	"time"

	"github.com/kelseyhightower/envconfig"
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

	Partitions    int           `envconfig:"PARTITIONS" default:"8"`
	MaxInFlight   int           `envconfig:"MAX_IN_FLIGHT" default:"256"`
	Takeover      time.Duration `envconfig:"TAKEOVER" default:"10s"`
	ShutdownGrace time.Duration `envconfig:"SHUTDOWN_GRACE" default:"25s"`
	ReplicaID     string        `envconfig:"REPLICA_ID"`

	HTTPAddr  string `envconfig:"HTTP_ADDR" default:":8080"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info"`
}

// LoadConfig reads the environment; an unparsable value is an error that names its variable.
func LoadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process("ROOMHOOK", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	return nil
}
