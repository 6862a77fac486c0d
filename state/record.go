package state

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Records are encoded as uvarint-length-prefixed fields after a version
// byte: compact, and decoded without reflection on the re-run path.
// Version 1 had no Copied field; it is read as Copied false.
const recordVersion = 2

func encodeRecord(r Record) []byte {
	var b []byte
	b = append(b, recordVersion)
	copied := ""
	if r.Copied {
		copied = "1"
	}
	for _, s := range []string{r.DstFolder, r.DstID, r.Key, strings.Join(r.Flags, " "), copied} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeRecord(v []byte) (Record, error) {
	var r Record
	if len(v) == 0 || (v[0] != 1 && v[0] != recordVersion) {
		return r, errors.New("unknown record version")
	}
	fields := make([]string, 4+int(v[0]-1))
	v = v[1:]
	for i := range fields {
		n, k := binary.Uvarint(v)
		if k <= 0 || uint64(len(v)-k) < n {
			return r, errors.New("truncated record")
		}
		fields[i] = string(v[k : k+int(n)])
		v = v[k+int(n):]
	}
	r.DstFolder, r.DstID, r.Key = fields[0], fields[1], fields[2]
	if fields[3] != "" {
		r.Flags = strings.Split(fields[3], " ")
	}
	r.Copied = len(fields) > 4 && fields[4] == "1"
	return r, nil
}
