// Package wirebuf puts a message that abacus writes onto the wire by hand
// (the client's adds, the server's AddCounts response) into the buffers
// gRPC sends, as grpc-go's own proto codec does.
package wirebuf

import "google.golang.org/grpc/mem"

// Of returns the size bytes that appendTo appends to an empty slice: in a
// pooled buffer, which gRPC frees once the message is written, unless the
// message is small enough that pooling would cost more than it saves.
func Of(size int, appendTo func([]byte) []byte) mem.BufferSlice {
	if mem.IsBelowBufferPoolingThreshold(size) {
		return mem.BufferSlice{mem.SliceBuffer(appendTo(make([]byte, 0, size)))}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	*buf = appendTo((*buf)[:0])
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}
}
