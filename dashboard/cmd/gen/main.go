// Command gen writes roomhook's Grafana dashboard JSON to each file named on the command line.
//
// Run it through go generate (see package dashboard):
//
//	go generate ./dashboard
package main

import (
	"fmt"
	"os"

	"github.com/roomhook/roomhook/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gen FILE...")
		os.Exit(2)
	}
	if err := write(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func write(paths []string) error {
	out, err := dashboard.JSON()
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.WriteFile(p, out, 0o644); err != nil {
			return fmt.Errorf("write dashboard: %w", err)
		}
	}
	return nil
}
