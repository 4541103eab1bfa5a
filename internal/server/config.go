package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/roomhook/roomhook/dispatcher"
	"github.com/roomhook/roomhook/egress"
	"github.com/roomhook/roomhook/endpoint"
	"github.com/roomhook/roomhook/schema"
	"github.com/roomhook/roomhook/schema/signature"
	"github.com/roomhook/roomhook/sender"
)

// Config is every setting of roomhook, read from ROOMHOOK_* environment variables by
// LoadConfig, the one loader every subcommand uses. docs/configuration.md and the Helm chart's
// README list the same fields, and CI checks that they do (it reads the envconfig tags of this
// file).
//
// To add a setting: add a field with its envconfig tag and default here, check its value in
// validate (errors through errConfig, so they name the variable), map it where it is used
// (DispatcherConfig, or serve), and document it in docs/configuration.md, the chart's values.yaml,
// deployment template and README.
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
	// StreamCluster places the region's streams and buckets in this cluster of a NATS
	// super-cluster; empty leaves placement to the server (the cluster the request came through).
	StreamCluster string        `envconfig:"STREAM_CLUSTER"`
	DLQMaxAge     time.Duration `envconfig:"DLQ_MAX_AGE" default:"720h"`
	MaxEventBytes int           `envconfig:"MAX_EVENT_BYTES" default:"1048576"`

	APIKey    string `envconfig:"API_KEY"`
	APISecret string `envconfig:"API_SECRET"`

	WebhookURLs     []string      `envconfig:"WEBHOOK_URLS"`
	EndpointsFile   string        `envconfig:"ENDPOINTS_FILE"`
	PerRoomWebhooks bool          `envconfig:"PER_ROOM_WEBHOOKS" default:"true"`
	RoomGrace       time.Duration `envconfig:"ROOM_GRACE" default:"10m"`
	RoomTTL         time.Duration `envconfig:"ROOM_TTL" default:"48h"`
	// Per-room URLs are untrusted input (whoever creates a room gives them): MaxRoomURLs of
	// one room_created are registered, MaxRoomEndpoints per-room endpoints live at most.
	MaxRoomURLs      int `envconfig:"MAX_ROOM_URLS" default:"5"`
	MaxRoomEndpoints int `envconfig:"MAX_ROOM_ENDPOINTS" default:"50000"`

	// The egress (SSRF) guard, package egress: connections to per-room endpoints (and global
	// ones with GuardGlobal) refuse non-global addresses at dial time, except AllowedTargets
	// (CIDRs, host names). AllowPrivateTargets "true" turns it off; empty means false, except
	// in the embedded development mode (no NATS_URL), where it means true.
	AllowedTargets      []string `envconfig:"ALLOWED_TARGETS"`
	AllowPrivateTargets string   `envconfig:"ALLOW_PRIVATE_TARGETS"`
	GuardGlobal         bool     `envconfig:"GUARD_GLOBAL" default:"false"`

	ContentType   string        `envconfig:"CONTENT_TYPE" default:"application/webhook+json"`
	RetrySchedule string        `envconfig:"RETRY_SCHEDULE" default:"0s,1s,5s,30s,2m,10m,30m,1h,3h,6h"`
	RetryJitter   float64       `envconfig:"RETRY_JITTER" default:"0.2"`
	HTTPTimeout   time.Duration `envconfig:"HTTP_TIMEOUT" default:"10s"`
	// Attempts in flight, and so connections in use, per receiver host and per replica:
	// they bound the file descriptors a replica opens, and a hanging host can take at most
	// its own share.
	MaxConnsPerHost int `envconfig:"MAX_CONNS_PER_HOST" default:"256"`
	MaxConns        int `envconfig:"MAX_CONNS" default:"4096"`

	BreakerFailures     int           `envconfig:"BREAKER_FAILURES" default:"5"`
	BreakerMaxProbeWait time.Duration `envconfig:"BREAKER_MAX_PROBE_WAIT" default:"1m"`

	Partitions  int `envconfig:"PARTITIONS" default:"8"`
	MaxInFlight int `envconfig:"MAX_IN_FLIGHT" default:"256"`
	// Spill queues a replica drains at once (each with a consumer of its own).
	MaxDraining int           `envconfig:"MAX_DRAINING" default:"64"`
	Takeover    time.Duration `envconfig:"TAKEOVER" default:"10s"`
	// The delivery core: how long a direct attempt may go unanswered before the endpoint's
	// later deliveries on that partition move to its spill queue; how often idle per-room
	// endpoints are retired; how long start-up waits for JetStream.
	SpillAfter     time.Duration `envconfig:"SPILL_AFTER" default:"1s"`
	RetireEvery    time.Duration `envconfig:"RETIRE_EVERY" default:"20s"`
	StartupTimeout time.Duration `envconfig:"STARTUP_TIMEOUT" default:"2m"`
	ShutdownGrace  time.Duration `envconfig:"SHUTDOWN_GRACE" default:"25s"`
	ReplicaID      string        `envconfig:"REPLICA_ID"`

	HTTPAddr  string `envconfig:"HTTP_ADDR" default:":8080"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"text"`
	LogLevel  string `envconfig:"LOG_LEVEL" default:"info"`

	// IngestAddr serves POST /ingest/plugnmeet (package ingest) when set; "off" turns off the
	// default of the embedded development mode (IngestListen).
	IngestAddr      string `envconfig:"INGEST_ADDR"`
	IngestAPIKey    string `envconfig:"INGEST_API_KEY"`
	IngestAPISecret string `envconfig:"INGEST_API_SECRET"`
}

// Development credentials used when none are configured: for development only, and announced
// with a loud warning.
const (
	devAPIKey    = "devkey"
	devAPISecret = "devsecret-change-me-devsecret-change-me"
)

// DevCredentials returns the signing credentials used when neither ROOMHOOK_API_KEY nor
// ROOMHOOK_API_SECRET is set, so that `roomhook receive` verifies what a development
// dispatcher signs.
func DevCredentials() signature.Credentials {
	return signature.Credentials{APIKey: devAPIKey, APISecret: devAPISecret}
}

// Scope says which settings a subcommand relies on, and so which LoadConfig checks.
type Scope int

const (
	// ScopeServe checks every setting: the dispatcher uses them all.
	ScopeServe Scope = iota
	// ScopeClient checks only what connecting to NATS as the dispatcher would needs (the
	// ROOMHOOK_NATS_* files and pairs), for the tools and operator subcommands; a setting
	// only the dispatcher reads does not stop them.
	ScopeClient
)

// envPrefix is the prefix of every variable: ROOMHOOK_<tag>.
const envPrefix = "ROOMHOOK"

// LoadConfig reads every ROOMHOOK_* variable and checks the settings scope needs. Every
// subcommand reads its configuration here, so a variable means the same everywhere. A bad value
// is an error that names its variable, e.g.
// "configuration: ROOMHOOK_PARTITIONS: must be 1..1024, got 0"; several are joined.
func LoadConfig(scope Scope) (Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var perr *envconfig.ParseError
		if errors.As(err, &perr) {
			// The value is left out: the variable may hold a secret.
			return c, fmt.Errorf("configuration: %s: not a valid %s: %w", perr.KeyName, perr.TypeName, perr.Err)
		}
		return c, fmt.Errorf("configuration: %w", err)
	}
	// MAX_CONNS alone, below the default per-host bound, lowers that bound with it: the
	// operator asked for fewer connections in all, not for a refusal. A per-host bound set
	// above MAX_CONNS is still refused by Validate.
	if v, set := os.LookupEnv(envPrefix + "_MAX_CONNS_PER_HOST"); (!set || v == "") && c.MaxConns >= 1 {
		c.MaxConnsPerHost = min(c.MaxConnsPerHost, c.MaxConns)
	}
	if scope == ScopeClient {
		return c, c.validateClient()
	}
	return c, c.Validate()
}

// errConfig names the variable a bad value came from.
func errConfig(variable, format string, args ...any) error {
	return fmt.Errorf("configuration: ROOMHOOK_%s: %s", variable, fmt.Sprintf(format, args...))
}

// Validate checks every setting, as LoadConfig(ScopeServe) does; a Config built in code (tests)
// goes through it too.
func (c Config) Validate() error {
	errs := c.connectionErrors()
	check := func(ok bool, variable, format string, args ...any) {
		if !ok {
			errs = append(errs, errConfig(variable, format, args...))
		}
	}
	if err := schema.ValidateRegion(c.Region); err != nil {
		errs = append(errs, errConfig("REGION", "%v", err))
	}
	check(c.StreamMaxAge >= 0, "STREAM_MAX_AGE", "must not be negative")
	check(c.StreamReplicas >= 1 && c.StreamReplicas <= 5, "STREAM_REPLICAS", "must be 1..5, got %d", c.StreamReplicas)
	check(!strings.ContainsAny(c.StreamCluster, " \t\r\n.*>"), "STREAM_CLUSTER", "must be a NATS cluster name (no spaces, dots or wildcards), got %q", c.StreamCluster)
	check(c.DLQMaxAge >= 0, "DLQ_MAX_AGE", "must not be negative")
	check(c.MaxEventBytes > 0, "MAX_EVENT_BYTES", "must be positive, got %d", c.MaxEventBytes)
	check(c.RoomGrace >= 0, "ROOM_GRACE", "must not be negative")
	check(c.RoomTTL > c.RoomGrace, "ROOM_TTL", "must be longer than ROOMHOOK_ROOM_GRACE")
	if err := checkContentType(c.ContentType); err != nil {
		errs = append(errs, err)
	}
	check(c.MaxRoomURLs >= 1 && c.MaxRoomURLs <= 100, "MAX_ROOM_URLS", "must be 1..100, got %d", c.MaxRoomURLs)
	check(c.MaxRoomEndpoints >= 1, "MAX_ROOM_ENDPOINTS", "must be at least 1, got %d", c.MaxRoomEndpoints)
	if _, err := c.EgressGuard(); err != nil {
		errs = append(errs, err)
	}
	check(c.HTTPTimeout > 0, "HTTP_TIMEOUT", "must be positive")
	check(c.MaxConns >= 1, "MAX_CONNS", "must be at least 1, got %d", c.MaxConns)
	check(c.MaxConnsPerHost >= 1, "MAX_CONNS_PER_HOST", "must be at least 1, got %d", c.MaxConnsPerHost)
	check(c.MaxConns < 1 || c.MaxConnsPerHost <= c.MaxConns, "MAX_CONNS_PER_HOST",
		"must not be more than ROOMHOOK_MAX_CONNS (%d), got %d", c.MaxConns, c.MaxConnsPerHost)
	check(c.BreakerFailures >= 1, "BREAKER_FAILURES", "must be at least 1, got %d", c.BreakerFailures)
	check(c.BreakerMaxProbeWait >= time.Second, "BREAKER_MAX_PROBE_WAIT", "must be at least 1s, got %s", c.BreakerMaxProbeWait)
	check(c.Partitions >= dispatcher.MinPartitions && c.Partitions <= dispatcher.MaxPartitions, "PARTITIONS", "must be %d..%d, got %d",
		dispatcher.MinPartitions, dispatcher.MaxPartitions, c.Partitions)
	check(c.MaxInFlight >= 1, "MAX_IN_FLIGHT", "must be at least 1, got %d", c.MaxInFlight)
	check(c.MaxDraining >= 1, "MAX_DRAINING", "must be at least 1, got %d", c.MaxDraining)
	check(c.Takeover >= time.Second, "TAKEOVER", "must be at least 1s, got %s", c.Takeover)
	check(c.SpillAfter >= 10*time.Millisecond, "SPILL_AFTER", "must be at least 10ms, got %s", c.SpillAfter)
	check(c.RetireEvery >= time.Second, "RETIRE_EVERY", "must be at least 1s, got %s", c.RetireEvery)
	check(c.StartupTimeout >= time.Second, "STARTUP_TIMEOUT", "must be at least 1s, got %s", c.StartupTimeout)
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
	check((c.IngestAPIKey == "") == (c.IngestAPISecret == ""), "INGEST_API_SECRET", "and ROOMHOOK_INGEST_API_KEY must be set together")
	if addr := c.IngestListen(); addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, errConfig("INGEST_ADDR", "%v (or off)", err))
		}
	}
	if _, err := sender.ParseRetrySchedule(c.RetrySchedule, c.RetryJitter); err != nil {
		variable := "RETRY_SCHEDULE"
		if c.RetryJitter < 0 || c.RetryJitter >= 1 {
			variable = "RETRY_JITTER"
		}
		errs = append(errs, errConfig(variable, "%v", err))
	}
	if _, err := endpoint.ParseWebhookURLs(c.WebhookURLs); err != nil {
		errs = append(errs, errConfig("WEBHOOK_URLS", "%v", err))
	}
	if c.EndpointsFile != "" {
		// Read it now so that a mistake in the file stops the start with the entry and field
		// named, rather than surfacing later.
		creds, _ := c.Credentials()
		if _, err := endpoint.LoadFile(c.EndpointsFile, creds); err != nil {
			errs = append(errs, errConfig("ENDPOINTS_FILE", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// validateClient checks what ScopeClient covers.
func (c Config) validateClient() error {
	return errors.Join(c.connectionErrors()...)
}

// connectionErrors checks the settings ConnectNATS uses.
func (c Config) connectionErrors() []error {
	var errs []error
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		errs = append(errs, errConfig("NATS_TLS_CERT", "and ROOMHOOK_NATS_TLS_KEY must be set together"))
	}
	// In a fixed order, so that the joined error reads the same every time.
	for _, f := range []struct{ variable, path string }{
		{"NATS_CREDS_FILE", c.NATSCredsFile}, {"NATS_NKEY_FILE", c.NATSNKeyFile},
		{"NATS_TLS_CA", c.NATSTLSCA}, {"NATS_TLS_CERT", c.NATSTLSCert}, {"NATS_TLS_KEY", c.NATSTLSKey},
	} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				errs = append(errs, errConfig(f.variable, "%v", err))
			}
		}
	}
	return errs
}

// Credentials returns the signing credentials, and whether they are the development ones
// (neither ROOMHOOK_API_KEY nor ROOMHOOK_API_SECRET set).
func (c Config) Credentials() (signature.Credentials, bool) {
	if c.APIKey == "" && c.APISecret == "" {
		return DevCredentials(), true
	}
	return signature.Credentials{APIKey: c.APIKey, APISecret: c.APISecret}, false
}

// DispatcherConfig maps the settings onto the dispatcher's.
func (c Config) DispatcherConfig(replicaID string, endpoints []endpoint.Endpoint) (dispatcher.Config, error) {
	schedule, err := sender.ParseRetrySchedule(c.RetrySchedule, c.RetryJitter)
	if err != nil {
		return dispatcher.Config{}, errConfig("RETRY_SCHEDULE", "%v", err)
	}
	creds, _ := c.Credentials()
	return dispatcher.Config{
		Region: c.Region, Partitions: c.Partitions, MaxInFlight: c.MaxInFlight, Takeover: c.Takeover,
		MaxEventBytes: c.MaxEventBytes, PerRoomWebhooks: c.PerRoomWebhooks, RoomGrace: c.RoomGrace,
		RoomTTL: c.RoomTTL, StreamMaxAge: c.StreamMaxAge, DLQMaxAge: c.DLQMaxAge,
		StreamReplicas: c.StreamReplicas, StreamCluster: c.StreamCluster, Retry: schedule, Credentials: creds,
		Endpoints: endpoints, ReplicaID: replicaID,
		BreakerFailures: c.BreakerFailures, MaxProbeWait: c.BreakerMaxProbeWait,
		MaxRoomURLs: c.MaxRoomURLs, MaxRoomEndpoints: c.MaxRoomEndpoints,
		SpillAfter: c.SpillAfter, RetireEvery: c.RetireEvery, StartupTimeout: c.StartupTimeout,
		MaxDraining: c.MaxDraining,
	}, nil
}

// EgressGuard is the SSRF guard the settings describe (ROOMHOOK_ALLOWED_TARGETS,
// ROOMHOOK_ALLOW_PRIVATE_TARGETS, ROOMHOOK_GUARD_GLOBAL), for the Sender.
func (c Config) EgressGuard() (*egress.Guard, error) {
	return newEgressGuard(c.AllowedTargets, c.AllowPrivateTargets, c.GuardGlobal, c.NATSURL == "")
}
