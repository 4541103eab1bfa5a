package subscriber

import (
	"fmt"
	"testing"
)

func TestOwnerSpreadsUnitsAndMovesOnlyTheLeaversShare(t *testing.T) {
	units := make([]string, 64)
	for i := range units {
		units[i] = fmt.Sprintf("p%d", i)
	}
	three := []string{"roomhook-7d9f-a", "roomhook-7d9f-b", "roomhook-7d9f-c"}
	count := map[string]int{}
	before := map[string]string{}
	for _, u := range units {
		o := owner(three, u)
		count[o]++
		before[u] = o
		if o2 := owner([]string{three[2], three[0], three[1]}, u); o2 != o {
			t.Fatalf("owner of %s depends on the order of the member list", u)
		}
	}
	for _, m := range three {
		// Replica ids differing in one character must still share the work (FNV alone did not).
		if count[m] < len(units)/6 {
			t.Errorf("%s owns %d of %d units: %v", m, count[m], len(units), count)
		}
	}
	two := three[:2]
	for _, u := range units {
		if before[u] != three[2] && owner(two, u) != before[u] {
			t.Errorf("%s moved from %s although its owner stayed", u, before[u])
		}
	}
}
