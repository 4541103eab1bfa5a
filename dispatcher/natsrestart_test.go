package dispatcher

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomhook/roomhook/internal/natstest"
)

func TestNATSRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	_, portStr, _ := net.SplitHostPort(reservePort(t))
	port, _ := strconv.Atoi(portStr)
	ns := startServerOn(t, dir, port)
	slow := newReceiver(t)
	slow.status = func(received, int) int { time.Sleep(2 * time.Millisecond); return 200 }
	r1 := startReplica(t, ns, testConfig("r1", slow.URL()))
	r2 := startReplica(t, ns, testConfig("r2", slow.URL()))

	// The publisher reconnects and retries like a media node would.
	_, js := natstest.Connect(t, ns.ClientURL(), nats.ReconnectWait(50*time.Millisecond))
	p := publisher{t, js}
	const rooms, perRoom = 10, 40
	for i := 0; i < perRoom/2; i++ {
		for r := 0; r < rooms; r++ {
			p.publish(newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000))
		}
	}
	waitFor(t, 20*time.Second, "some deliveries", func() bool { return slow.count() >= 20 })
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(500 * time.Millisecond)
	startServerOn(t, dir, port) // the same store and port: clients reconnect to it

	for i := perRoom / 2; i < perRoom; i++ {
		for r := 0; r < rooms; r++ {
			evt := newEvent(fmt.Sprintf("room-%d", r), "participant_joined", fmt.Sprintf("ev-%d-%d", r, i), 1761815000)
			subj := fmt.Sprintf("roomhook.events.default.room-%d.participant_joined", r)
			msg := nats.NewMsg(subj)
			msg.Data = mustMarshal(t, evt)
			msg.Header.Set(nats.MsgIdHdr, evt.GetId())
			deadline := time.Now().Add(20 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := js.PublishMsg(ctx, msg)
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("publish after the restart: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	waitFor(t, 60*time.Second, "every event after the NATS restart", func() bool { return distinct(slow) == rooms*perRoom })
	checkOrder(t, "endpoint", slow.deliveries(), eventIndex)
	t.Logf("%d deliveries for %d events", slow.count(), rooms*perRoom)
	r1.stop() // while the server still runs (cleanups would stop it first)
	r2.stop()
}
