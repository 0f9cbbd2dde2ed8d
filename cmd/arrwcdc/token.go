package main

import (
	"context"
	"fmt"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/config"
)

// runToken prints an access token (DESIGN §8) for development and tests:
// it reads --library ids (or every library with --all), may --publish,
// expires after --ttl, and is signed with --secret-file (HS256) or
// --private-key-file (RS256). The bridge and the broker's auth callout
// accept it when they verify with the same secret or the matching public
// key.
func runToken(_ context.Context, cfg config.Config, e env) error {
	t := cfg.Token
	s, err := auth.LoadSigner(t.SecretFile, t.PrivateKeyFile)
	if err != nil {
		return err
	}
	read := t.Libraries
	if t.All {
		read = []string{auth.All}
	}
	tok, err := s.Sign(auth.Claims{Subject: t.Subject, Read: read, Publish: t.Publish}, t.TTL)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}
