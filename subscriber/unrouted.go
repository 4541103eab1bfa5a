package subscriber

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// UnroutedEvents counts the events stream's messages on Names.EventsUnroutedSubjects, the
// subjects the partition stream does not copy, from the stream's subject counts: one
// request, answered from the server's subject index.
func UnroutedEvents(ctx context.Context, js jetstream.JetStream, n Names) (uint64, error) {
	st, err := js.Stream(ctx, n.EventsStream())
	if err != nil {
		return 0, fmt.Errorf("events stream %s: %w", n.EventsStream(), err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(n.EventsUnroutedSubjects()))
	if err != nil {
		return 0, fmt.Errorf("events stream %s: %w", n.EventsStream(), err)
	}
	var total uint64
	for _, c := range info.State.Subjects {
		total += c
	}
	return total, nil
}
