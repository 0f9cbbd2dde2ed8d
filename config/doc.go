// Package config loads the settings of one arrwcdc subcommand (DESIGN §5)
// into a [Config].
//
// Every setting is a flag, and has an environment twin and a key in the
// optional YAML file: --nats-listen is ARRWCDC_NATS_LISTEN and nats_listen.
// One table declares each setting once (name, commands, default, usage, and
// the field it fills), and all three sources go through the same
// [flag.Value] Set, so a value parses identically wherever it comes from.
// [Load] applies, from lowest to highest precedence:
//
//  1. the defaults of the table;
//  2. the YAML file named by --config or ARRWCDC_CONFIG, a flat mapping of
//     snake_case keys (a sequence gives a list setting such as routes);
//  3. the environment, ARRWCDC_<FLAG_IN_UPPER_SNAKE>, where "" means unset;
//  4. the flags.
//
// Only the settings of the command are read: a flag or YAML key of another
// command is an error, while the env vars of other commands are ignored.
// Then [Config.Validate] reports every problem at once, each as a
// [*FieldError] naming the setting and its bad value.
//
// --help returns [flag.ErrHelp] after printing the command's usage: its
// one-line summary (see [Commands]) and each flag with its default and env
// var.
//
// The package has no goroutines and no global state besides its tables.
package config
