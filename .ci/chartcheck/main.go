// Command chartcheck checks what `helm template` renders for the roomhook chart before any
// cluster sees it: every document must decode strictly (no unknown or duplicate fields, exact
// field case) into the Kubernetes API types or, for the CRDs, into their Go types; the objects
// must fit together (selectors, ports, volumes, scale targets); the Deployment must set every
// ROOMHOOK_* variable of roomhook's internal/server/config.go exactly once, with a value of the field's type.
//
// Usage:
//
//	chartcheck -config ../../internal/server/config.go rendered.yaml...
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	configPath := flag.String("config", "", "roomhook's internal/server/config.go; when set, each Deployment's ROOMHOOK_* env is checked against its Config struct")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: chartcheck [-config config.go] rendered.yaml...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}

	var settings []setting
	if *configPath != "" {
		var err error
		if settings, err = readSettings(*configPath); err != nil {
			fmt.Fprintln(os.Stderr, "chartcheck:", err)
			os.Exit(2)
		}
	}

	failed := false
	for _, path := range flag.Args() {
		problems, err := checkFile(path, settings)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
			continue
		}
		for _, p := range problems {
			fmt.Fprintf(os.Stderr, "%s: %s\n", path, p)
		}
		if len(problems) > 0 {
			failed = true
			continue
		}
		fmt.Printf("ok %s\n", path)
	}
	if failed {
		os.Exit(1)
	}
}

// checkFile decodes one rendered manifest and runs every check on it.
func checkFile(path string, settings []setting) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	m, problems, err := decodeManifest(data)
	if err != nil {
		return nil, err
	}
	problems = append(problems, checkManifest(m)...)
	if settings != nil {
		for _, d := range m.deployments {
			problems = append(problems, checkEnv(d, settings)...)
		}
	}
	return problems, nil
}
