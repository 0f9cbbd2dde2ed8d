package config

import (
	"fmt"
	"io"
	"strings"
)

// usage prints the command's summary and each flag with its argument,
// default and env var.
func (f *flagSet) usage(w io.Writer) {
	var b strings.Builder
	summary := ""
	for _, c := range Commands {
		if c.Name == f.command {
			summary = c.Summary
		}
	}
	if len(f.settings) == 0 {
		fmt.Fprintf(&b, "Usage: arrwcdc %s\n\n%s\n", f.command, summary)
		_, _ = io.WriteString(w, b.String())
		return
	}
	fmt.Fprintf(&b, "Usage: arrwcdc %s [flags]\n\n%s\n\n", f.command, summary)
	b.WriteString("Flags; each also reads its env var and, in the --config file, its name in snake_case\n")
	b.WriteString("(precedence: defaults < file < env < flags):\n")
	for _, s := range f.settings {
		arg, text := unquoteUsage(s.usage)
		fmt.Fprintf(&b, "  --%s", s.name)
		if _, isBool := f.values[s.name].Value.(*boolValue); !isBool {
			fmt.Fprintf(&b, " %s", arg)
		}
		fmt.Fprintf(&b, "\n      %s\n      ", text)
		if def := f.fs.Lookup(s.name).DefValue; def != "" && def != "false" {
			fmt.Fprintf(&b, "default %s; ", def)
		}
		fmt.Fprintf(&b, "env %s\n", envName(s.name))
	}
	b.WriteString("  -h, --help\n      print this help\n")
	_, _ = io.WriteString(w, b.String())
}

// unquoteUsage returns the `quoted` argument name of a usage and the usage
// without the backquotes; "value" if none is quoted.
func unquoteUsage(usage string) (arg, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "value", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "value", usage
	}
	return name, before + name + after
}
