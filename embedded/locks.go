package embedded

import (
	"slices"
	"sync"
)

// numStripes is the number of mutexes keys are hashed to. Two keys share a
// mutex with probability 1/numStripes, which only costs waiting, never
// correctness; 1024 keeps that rare for hundreds of concurrent writers.
const numStripes = 1024

// stripes serialises read-check-write sequences per key without a mutex per
// key. Pebble has no transactions that would detect the conflict, so a
// check (is this idempotency key stored?) and the write that depends on it
// must hold the key's stripe until the write is committed.
type stripes struct {
	mu [numStripes]paddedMutex
}

// paddedMutex keeps neighbouring mutexes on separate cache lines.
type paddedMutex struct {
	sync.Mutex
	_ [64 - 8]byte
}

func stripeOf(key []byte) uint32 { return uint32(keyHash(key) % numStripes) }

// lock locks the stripes of keys in ascending order, so that two callers
// locking overlapping sets cannot deadlock, and returns the unlock function.
func (s *stripes) lock(keys [][]byte) (unlock func()) {
	hashes := make([]uint64, len(keys))
	for i, k := range keys {
		hashes[i] = keyHash(k)
	}
	return s.lockHashes(hashes)
}

// lockHashes is lock for keys given by their keyHash.
func (s *stripes) lockHashes(hashes []uint64) (unlock func()) {
	idx := make([]uint32, len(hashes))
	for i, h := range hashes {
		idx[i] = uint32(h % numStripes)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.mu[i].Lock()
	}
	return func() {
		for _, i := range idx {
			s.mu[i].Unlock()
		}
	}
}

// lockOne locks the stripe of one key.
func (s *stripes) lockOne(key []byte) (unlock func()) {
	m := &s.mu[stripeOf(key)]
	m.Lock()
	return m.Unlock
}
