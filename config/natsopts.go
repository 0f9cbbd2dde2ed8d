package config

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// NATSOptions returns the nats.Options of c.NATSClient: how to log in
// (user and password, nkey seed file, credentials file or token) and
// which CAs and client certificate to use for TLS. Give them to
// nats.Connect after the caller's own options (name, reconnects). The zero
// NATSClient gives none. Errors: an unreadable nkey seed file.
func (c Config) NATSOptions() ([]nats.Option, error) {
	n := c.NATSClient
	var opts []nats.Option
	switch {
	case n.User != "" || n.Password != "":
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	case n.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey-seed-file: %w", err)
		}
		opts = append(opts, o)
	case n.CredsFile != "":
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	case n.Token != "":
		opts = append(opts, nats.Token(n.Token))
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" || n.TLSKey != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts, nil
}
