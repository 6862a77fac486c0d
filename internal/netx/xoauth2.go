package netx

import "github.com/emersion/go-sasl"

// XOAUTH2 is the SASL client for Google's and Microsoft's XOAUTH2
// mechanism, which go-sasl lacks (library audit §1.1). On failure the
// server sends a JSON challenge, which is answered with an empty response
// so that it then sends the error.
func XOAUTH2(user, token string) sasl.Client { return &xoauth2{user, token} }

type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", XOAUTH2Response(x.user, x.token), nil
}

func (x *xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

// XOAUTH2Response is the initial client response of XOAUTH2.
func XOAUTH2Response(user, token string) []byte {
	return []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}
