package cli

import (
	"errors"
	"flag"
	"strings"
)

// FlagError rewrites an error of Go's flag package so that it shows the
// flag as the user typed it: the package always writes one dash ("flag
// provided but not defined: -jsn" for --jsn), which sends the user looking
// for a typo they did not make. args is the command line that was parsed.
// flag.ErrHelp comes back unchanged, so callers can still test for it.
func FlagError(err error, args []string) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	// The messages of the flag package that name a flag, each with the
	// text before its "-name".
	for _, prefix := range []string{
		"flag provided but not defined: ",
		"flag needs an argument: ",
		" for flag ",
		" for ",
		"invalid boolean flag ",
	} {
		i := strings.Index(msg, prefix)
		if i < 0 {
			continue
		}
		start := i + len(prefix)
		end := start + strings.IndexAny(msg[start:]+":", ": ")
		token := msg[start:end]
		name := strings.TrimLeft(token, "-")
		if name == "" || token == name && prefix != "invalid boolean flag " {
			continue // not a flag name (" for " inside a quoted value)
		}
		asTyped := typedFlag(name, args)
		msg = msg[:start] + asTyped + msg[end:]
		if strings.HasPrefix(msg, "flag provided but not defined: ") {
			msg = "unknown flag " + asTyped
		}
		return errors.New(msg)
	}
	return err
}

// typedFlag finds how the flag called name was written on the command line
// ("--jsn", "-jsn"); it assumes the usual "--name" when it cannot tell.
func typedFlag(name string, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n == name {
			dashes := a[:len(a)-len(strings.TrimLeft(a, "-"))]
			return dashes + name
		}
	}
	return "--" + name
}
