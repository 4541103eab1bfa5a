// Package cli is roomhook's command line: the subcommands (serve, publish, receive, bench,
// endpoints, status, dlq, resend, tail), their flags and their output. main.go lists the subcommands and
// hands the command line to Main; every subcommand reads its settings with
// server.LoadConfig, so ROOMHOOK_* means the same in all of them.
package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one `roomhook <name>` entry point.
type Command struct {
	// Name is the word after roomhook.
	Name string
	// Summary is its line in `roomhook help`.
	Summary string
	// Run runs it; args are the arguments after the name.
	Run func(ctx context.Context, args []string) error
}

// DefaultCommand runs when the first argument is missing or a flag: plain `roomhook` serves.
const DefaultCommand = "serve"

// Main runs the command args name, or prints the usage to stderr for `help` and for an unknown
// name. It returns the process's exit status: 0, 1 when the command failed, 2 for an unknown
// name.
func Main(ctx context.Context, cmds []Command, args []string, stderr io.Writer) int {
	name := DefaultCommand
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	i := slices.IndexFunc(cmds, func(c Command) bool { return c.Name == name })
	if i < 0 || name == "help" {
		printUsage(stderr, cmds)
		if i < 0 && name != "help" {
			return 2
		}
		return 0
	}
	if err := cmds[i].Run(ctx, args); err != nil {
		fmt.Fprintln(stderr, "roomhook:", err)
		return 1
	}
	return 0
}

// printUsage lists the subcommands by name.
func printUsage(w io.Writer, cmds []Command) {
	fmt.Fprintln(w, "usage: roomhook [subcommand] [flags]")
	sorted := slices.SortedFunc(slices.Values(cmds), func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
}
