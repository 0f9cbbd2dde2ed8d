package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/arrwdb/arrwcdc/auth"
)

func Example() {
	secret := []byte("a development secret of 32+ bytes!")
	signer, _ := auth.NewHS256Signer(secret)
	verifier, _ := auth.NewHS256(secret)

	token, _ := signer.Sign(auth.Claims{Subject: "alice", Read: []string{"lib-1"}}, time.Hour)
	claims, err := verifier.Verify(token)
	fmt.Println(err, claims.Subject, claims.CanRead("lib-1"), claims.CanRead("lib-10"), claims.CanPublish())
	fmt.Println(claims.CanReadPattern("events", "events.library.lib-1.document.*"), claims.CanReadPattern("events", "events.>"))

	expired, _ := signer.Sign(auth.Claims{Read: []string{"lib-1"}}, -time.Minute)
	_, err = verifier.Verify(expired)
	fmt.Println(errors.Is(err, auth.ErrExpired))
	// Output:
	// <nil> alice true false false
	// true false
	// true
}
