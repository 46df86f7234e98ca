package authz

import "time"

// RecordKey derives the key of the Redis records' MACs from a client
// secret, for tests that write records as one who holds it would.
var RecordKey = recordKey

// RecordMAC appends to b the MAC of the record rec stored under the Redis
// key k, under the record key key.
var RecordMAC = mac

// SetRotationClock makes in read the time from now when it reads a rotated
// client secret and when it decides whether the grace of the previous one
// has ended.
func SetRotationClock(in *Introspector, now func() time.Time) {
	in.credential.mu.Lock()
	defer in.credential.mu.Unlock()
	in.credential.now = now
}
