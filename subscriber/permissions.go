package subscriber

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AdminServiceName is the NATS micro service name of the admin API (admin.ServiceName); it is
// here so that permissions can name its discovery subjects.
const AdminServiceName = "roomhook-admin"

// AdminSubjects matches every admin operation of the region: roomhook.admin.<region>.>.
func (n Names) AdminSubjects() string { return "roomhook.admin." + n.Region + ".>" }

// AdminReadSubjects matches the admin operations that only read (status, endpoints list,
// dlq list and show): roomhook.admin.<region>.read.>.
func (n Names) AdminReadSubjects() string { return "roomhook.admin." + n.Region + ".read.>" }

// AdminWriteSubjects matches the admin operations that change state (pause, resume, replay,
// purge): roomhook.admin.<region>.write.>.
func (n Names) AdminWriteSubjects() string { return "roomhook.admin." + n.Region + ".write.>" }

// Role is a kind of NATS user of a roomhook region.
type Role string

// The roles, least privilege each.
const (
	// RoleMediaNode publishes events, nothing else: what it may publish is what it can make
	// roomhook do, because the subject is the authority (DESIGN 1.1).
	RoleMediaNode Role = "media_node"
	// RoleDispatcher is roomhook itself: its streams, consumers, buckets, acks and its admin
	// service, and nothing of other services.
	RoleDispatcher Role = "dispatcher"
	// RoleReadOnlyOperator may call the admin operations that only read.
	RoleReadOnlyOperator Role = "operator_read"
	// RoleOperator may call every admin operation.
	RoleOperator Role = "operator"
	// RoleReader is another service that consumes the events with consumers of its own.
	RoleReader Role = "reader"
)

// Roles lists every role, in the order documentation shows them.
func Roles() []Role {
	return []Role{RoleMediaNode, RoleDispatcher, RoleReadOnlyOperator, RoleOperator, RoleReader}
}

// ErrUnknownRole marks a role name Permissions does not know.
var ErrUnknownRole = errors.New("unknown role")

// Permissions is what one NATS user may publish and subscribe to, as nats-server
// authorization lists them. Everything not listed is denied.
type Permissions struct {
	Publish   []string
	Subscribe []string
	// AllowResponses lets the user answer requests it received (on their reply subjects)
	// without publish permission on inboxes; the admin service needs it.
	AllowResponses bool
}

// PermissionOptions adjusts a role's permissions to how roomhook is run.
type PermissionOptions struct {
	// Ingest: the dispatcher serves the HTTP ingest (ROOMHOOK_INGEST_ADDR) and so publishes
	// events itself.
	Ingest bool
}

// inbox is where every client receives replies: JetStream API answers, pulled messages and
// admin answers. A per-user inbox prefix (nats.CustomInboxPrefix) would narrow it further.
const inbox = "_INBOX.>"

// Permissions returns role's permissions in this region.
func (n Names) Permissions(role Role, opts PermissionOptions) (Permissions, error) {
	switch role {
	case RoleMediaNode:
		return Permissions{Publish: []string{n.EventsPublishSubjects()}, Subscribe: []string{inbox}}, nil
	case RoleDispatcher:
		return n.dispatcherPermissions(opts), nil
	case RoleReadOnlyOperator:
		return n.operatorPermissions(n.AdminReadSubjects()), nil
	case RoleOperator:
		return n.operatorPermissions(n.AdminSubjects()), nil
	case RoleReader:
		return n.readerPermissions(), nil
	}
	return Permissions{}, fmt.Errorf("%w %q", ErrUnknownRole, role)
}

// kvStream is the stream behind a key-value bucket.
func kvStream(bucket string) string { return "KV_" + bucket }

// streamAPI is the JetStream API of a stream roomhook owns: every stream operation, every
// consumer operation, direct gets, acks and flow control of its consumers.
func streamAPI(stream string) []string {
	return []string{
		"$JS.API.STREAM.*." + stream,
		"$JS.API.STREAM.MSG.*." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.*." + stream,
		"$JS.API.CONSUMER.*." + stream + ".>",
		"$JS.API.CONSUMER.*.*." + stream + ".>", // DURABLE.CREATE and MSG.NEXT
		"$JS.ACK." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
}

// consumerAPI is what a user needs to read a stream it does not own with consumers of its
// own: its info, consumer operations, acks and flow control, but no stream changes.
func consumerAPI(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.*." + stream,
		"$JS.API.CONSUMER.*." + stream + ".>",
		"$JS.API.CONSUMER.*.*." + stream + ".>",
		"$JS.ACK." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
}

func (n Names) buckets() []string {
	return []string{n.MembersBucket(), n.LeasesBucket(), n.RoomsBucket(), n.EndpointsBucket(), n.HealthBucket()}
}

func (n Names) dispatcherPermissions(opts PermissionOptions) Permissions {
	events := n.EventsStream()
	pub := []string{
		"$JS.API.INFO", // readiness: is JetStream there
		// The public events stream: created and kept up to date, read through the partition
		// stream it sources into; never purged or deleted, since other services read it.
		"$JS.API.STREAM.CREATE." + events,
		"$JS.API.STREAM.UPDATE." + events,
		"$JS.API.STREAM.INFO." + events,
		// The first version's router consumer on it, read once at upgrade.
		"$JS.API.CONSUMER.INFO." + events + "." + n.LegacyRouterConsumer(),
		"$JS.API.CONSUMER.DELETE." + events + "." + n.LegacyRouterConsumer(),
		// Resend from the log (the admin API's events.resend) reads the stream with an
		// ephemeral ordered consumer and direct gets; it acknowledges nothing and deletes no
		// consumer, so other services' consumers on the stream are out of its reach.
		"$JS.API.STREAM.MSG.GET." + events,
		"$JS.API.DIRECT.GET." + events,
		"$JS.API.DIRECT.GET." + events + ".>",
		"$JS.API.CONSUMER.CREATE." + events + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + events + ".*",
		"$JS.FC." + events + ".>",
		// What roomhook publishes itself.
		n.SpillSubjects(),
		n.DLQSubjects(),
		n.NotifySubjects(),
	}
	for _, st := range []string{n.PartStream(), n.SpillStream(), n.DLQStream(), n.LegacyDeliverStream()} {
		pub = append(pub, streamAPI(st)...)
	}
	for _, b := range n.buckets() {
		pub = append(pub, streamAPI(kvStream(b))...)
		pub = append(pub, "$KV."+b+".>")
	}
	if opts.Ingest {
		pub = append(pub, n.EventsPublishSubjects())
	}
	sub := []string{
		inbox,
		n.NotifySubjects(),
		n.AdminSubjects(),
		// The admin service's discovery endpoints (nats micro ls / info / stats).
		"$SRV.PING", "$SRV.INFO", "$SRV.STATS",
		"$SRV.*." + AdminServiceName,
		"$SRV.*." + AdminServiceName + ".>",
	}
	return Permissions{Publish: pub, Subscribe: sub, AllowResponses: true}
}

func (n Names) operatorPermissions(admin string) Permissions {
	return Permissions{
		Publish: []string{
			admin,
			// Discovery of the admin service: nats micro ls / info / stats.
			"$SRV.PING", "$SRV.INFO", "$SRV.STATS",
			"$SRV.*." + AdminServiceName,
			"$SRV.*." + AdminServiceName + ".>",
		},
		Subscribe: []string{inbox},
	}
}

func (n Names) readerPermissions() Permissions {
	return Permissions{
		Publish: consumerAPI(n.EventsStream()),
		// Core NATS subscriptions on the events too, for services that want them live only.
		Subscribe: []string{inbox, n.EventsSubjects()},
	}
}

// User is one NATS user of a region for AuthorizationConfig.
type User struct {
	Name     string
	Password string // or a bcrypt hash ("$2a$…") as nats-server accepts
	Role     Role
	Options  PermissionOptions
}

// AuthorizationConfig renders a nats-server authorization block that gives each user its
// role's permissions in this region, for example
//
//	authorization {
//	  users = [
//	    {user: "media", password: "…", permissions: {publish: {allow: ["roomhook.events.eu.>"]}, …}}
//	  ]
//	}
//
// Include it in nats-server.conf (for JetStream, each user must be in an account with
// JetStream enabled; the default account of a server with jetstream {} is).
func (n Names) AuthorizationConfig(users []User) (string, error) {
	var b strings.Builder
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		if u.Name == "" {
			return "", errors.New("authorization: a user without a name")
		}
		p, err := n.Permissions(u.Role, u.Options)
		if err != nil {
			return "", fmt.Errorf("authorization: user %s: %w", u.Name, err)
		}
		fmt.Fprintf(&b, "    # %s\n    {\n      user: %s\n      password: %s\n      permissions: {\n", u.Role, strconv.Quote(u.Name), strconv.Quote(u.Password))
		fmt.Fprintf(&b, "        publish: {allow: %s}\n", quoteList(p.Publish))
		fmt.Fprintf(&b, "        subscribe: {allow: %s}\n", quoteList(p.Subscribe))
		if p.AllowResponses {
			b.WriteString("        allow_responses: true\n")
		}
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

// quoteList renders a list of subjects, one a line when there are more than a few, so that a
// reviewer can read the configuration.
func quoteList(list []string) string {
	list = slices.Compact(slices.Clone(list))
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	if len(q) <= 3 {
		return "[" + strings.Join(q, ", ") + "]"
	}
	return "[\n          " + strings.Join(q, ",\n          ") + "\n        ]"
}
