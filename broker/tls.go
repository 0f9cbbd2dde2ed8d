package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// tlsTimeout bounds a TLS handshake on the client and route listeners.
const tlsTimeout = 5 * time.Second

// TLSConfig holds the PEM files of one listener's TLS. The zero value
// means plain TCP.
type TLSConfig struct {
	// Cert is the certificate file (the chain, leaf first). Set with Key
	// to turn TLS on.
	Cert string `yaml:"cert"`
	// Key is the certificate's private key file.
	Key string `yaml:"key"`
	// CA is a file of CA certificates. On the client listener it turns on
	// mutual TLS: every client must present a certificate signed by one of
	// them. On the cluster listener it is required: routes verify each
	// other both ways.
	CA string `yaml:"ca"`
}

// Enabled reports whether the listener uses TLS.
func (t TLSConfig) Enabled() bool { return t.Cert != "" || t.Key != "" }

// validate reports what is missing or unreadable; field is "tls" or
// "cluster_tls".
func (t TLSConfig) validate(field string, needCA bool) []error {
	if t == (TLSConfig{}) {
		return nil
	}
	var errs []error
	if t.Cert == "" {
		errs = append(errs, fmt.Errorf("%s.cert: missing: TLS needs a certificate and its key", field))
	}
	if t.Key == "" {
		errs = append(errs, fmt.Errorf("%s.key: missing: TLS needs a certificate and its key", field))
	}
	if needCA && t.CA == "" {
		errs = append(errs, fmt.Errorf("%s.ca: missing: cluster routes verify each other with a CA", field))
	}
	for _, f := range []struct{ name, path string }{{"cert", t.Cert}, {"key", t.Key}, {"ca", t.CA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %q: %w", field, f.name, f.path, errors.Unwrap(err)))
		}
	}
	if len(errs) == 0 {
		if _, err := t.serverConfig(needCA); err != nil {
			errs = append(errs, fmt.Errorf("%s.cert: %q: %w", field, t.Cert, err))
		}
	}
	return errs
}

// serverConfig builds the listener's tls.Config as nats-server does for
// its configuration file: client certificates verified when CA is set;
// for routes (mutual) the CA also verifies the peers this node dials.
func (t TLSConfig) serverConfig(route bool) (*tls.Config, error) {
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: t.Cert,
		KeyFile:  t.Key,
		CaFile:   t.CA,
		Verify:   t.CA != "",
		Timeout:  tlsTimeout.Seconds(),
	})
	if err != nil {
		return nil, err
	}
	if route {
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.RootCAs = tc.ClientCAs
	}
	return tc, nil
}
