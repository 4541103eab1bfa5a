package cli

import (
	"errors"
	"flag"
	"fmt"
)

// Every subcommand reads its command line with one of these. help reports that -h printed the
// usage: the command then does nothing and exits 0.

// parseFlags parses a subcommand's flags; it takes no other arguments.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return true, nil
	case err != nil:
		return false, err
	case fs.NArg() > 0:
		return false, fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return false, nil
}

// parseArgs parses flags wherever they stand among the arguments (`pause <id> --json` as well
// as `pause --json <id>`) and returns the other arguments.
func parseArgs(fs *flag.FlagSet, args []string) (rest []string, help bool, err error) {
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, false, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}
