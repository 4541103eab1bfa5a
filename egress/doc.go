// Package egress is roomhook's guard against server-side request forgery: per-room webhook URLs
// come from whoever creates a room, so without it any room could make roomhook POST signed
// requests to its own metrics port, a cloud metadata service or an internal API.
//
// The guard checks the IP address of every connection just before it is made (in the
// net.Dialer's Control hook, after name resolution), so a host name that resolves to a public
// address once and an internal one the next time (DNS rebinding) is caught on the dial that
// matters.
package egress
