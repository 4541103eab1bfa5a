package traffic

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/roomhook/roomhook/schema/roomhookv1"
)

// Config describes the traffic a Generator plays.
type Config struct {
	// Run names this run in room ids and event ids; [a-z0-9]+. Empty: derived from Seed.
	Run string
	// Seed makes the traffic reproducible: the same Config gives the same events.
	Seed uint64
	// Rooms is how many meetings run at the same time (default 1).
	Rooms int
	// Participants is how many people join each meeting (default 4). Each one joins, publishes
	// tracks and leaves; about one in ten drops and reconnects once.
	Participants int
	// RoomWebhooks are per-room webhook URLs every room_created registers (routing field
	// webhook_urls), so the room's events go there as well as to the global endpoints.
	RoomWebhooks []string
	// Start is the created_at of the first events; the zero value means 2026-01-01T09:00:00Z
	// so that output stays reproducible. Later events are timed as a meeting unfolds.
	Start time.Time
	// Continuous replaces each finished meeting with a new room, so Next never runs out.
	// Without it the Generator stops after the first Rooms meetings.
	Continuous bool
}

// Generator plays meetings and returns their events one at a time, rooms interleaved. It is
// not safe for concurrent use.
type Generator struct {
	cfg      Config
	rng      *rand.Rand
	slots    []*meeting // meetings in progress; nil when a slot has finished for good
	active   int        // non-nil slots
	nextRoom int        // room number of the next meeting to start
}

// ErrConfig marks a Config a Generator cannot play.
var ErrConfig = errors.New("invalid traffic configuration")

// defaultStart is the created_at of the first events when Config.Start is zero.
func defaultStart() time.Time { return time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC) }

// NewGenerator checks cfg and fills in its defaults.
func NewGenerator(cfg Config) (*Generator, error) {
	if cfg.Rooms == 0 {
		cfg.Rooms = 1
	}
	if cfg.Participants == 0 {
		cfg.Participants = 4
	}
	switch {
	case cfg.Rooms < 0:
		return nil, fmt.Errorf("%w: rooms must be positive, got %d", ErrConfig, cfg.Rooms)
	case cfg.Participants < 0:
		return nil, fmt.Errorf("%w: participants must be positive, got %d", ErrConfig, cfg.Participants)
	}
	if cfg.Run == "" {
		cfg.Run = runFromSeed(cfg.Seed)
	}
	if err := ValidateRun(cfg.Run); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Start.IsZero() {
		cfg.Start = defaultStart()
	}
	cfg.RoomWebhooks = append([]string(nil), cfg.RoomWebhooks...)
	g := &Generator{
		cfg:      cfg,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x726f6f6d686f6f6b)), // "roomhook"
		slots:    make([]*meeting, cfg.Rooms),
		nextRoom: 1,
	}
	for i := range g.slots {
		g.slots[i] = g.startMeeting(cfg.Start.Add(time.Duration(i) * 7 * time.Second))
	}
	g.active = len(g.slots)
	return g, nil
}

// runFromSeed is a short base-36 name, so runs with different seeds get different ids.
func runFromSeed(seed uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	x := seed*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	b := make([]byte, 6)
	for i := range b {
		b[i] = digits[x%36]
		x /= 36
	}
	return string(b)
}

// Run is the run name used in room ids and event ids.
func (g *Generator) Run() string { return g.cfg.Run }

// Next returns the next event, with its id, created_at and room set, and false once every
// meeting has ended (never, with Config.Continuous). Events of one meeting share sub-messages
// (a track appears in several events, the room's codecs in all of them): treat them as
// read-only, or proto.Clone one before changing it.
func (g *Generator) Next() (*roomhookv1.Event, bool) {
	for g.active > 0 {
		// A random meeting in progress moves on, so rooms interleave as on a busy media node.
		i := g.rng.IntN(len(g.slots))
		for g.slots[i] == nil {
			i = (i + 1) % len(g.slots)
		}
		m := g.slots[i]
		evt := m.next()
		if m.done() {
			if g.cfg.Continuous {
				g.slots[i] = g.startMeeting(m.end)
			} else {
				g.slots[i] = nil
				g.active--
			}
		}
		if evt != nil {
			return evt, true
		}
	}
	return nil, false
}

func (g *Generator) startMeeting(start time.Time) *meeting {
	n := g.nextRoom
	g.nextRoom++
	return newMeeting(g.rng, g.cfg, n, start)
}
