package client

import (
	"encoding/hex"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/internal/wirebuf"
)

// item is one call's request as a natural batch holds it: a counter, and
// for an add its delta and idempotency key. It is a value with no pointer to
// a message of its own, so that queueing a call allocates nothing; the adds
// are written onto the wire from it (see addsMsg), and made into messages
// only on the paths that need them (errors, interceptors).
type item struct {
	ns, counter string
	delta       int64
	// The idempotency token: uuid, made by the client, when own is set, and
	// otherwise id, the caller's (Service).
	own  bool
	uuid uuid.UUID
	id   string
	// The generation time, unless noTime: a caller's token without one is
	// sent as it is, and refused by the server with its own message.
	sec    int64
	nanos  int32
	noTime bool
}

// newAdd returns the add of delta to a counter, stamped with a new token
// of the client's and the time at.
func (c *Client) newAdd(ns, counter string, delta int64, at time.Time) item {
	return item{ns: ns, counter: counter, delta: delta, own: true, uuid: c.tokens.nextUUID(),
		sec: at.Unix(), nanos: int32(at.Nanosecond())}
}

// tokenItem returns the add of delta to a counter with the caller's token
// tok (an explicit batch's, AddCounts and Service.AddBatch).
func tokenItem(ns, counter string, delta int64, tok abacus.Token) item {
	return item{ns: ns, counter: counter, delta: delta, id: tok.ID,
		sec: tok.Time.Unix(), nanos: int32(tok.Time.Nanosecond()), noTime: tok.Time.IsZero()}
}

// token returns the item's idempotency token.
func (it *item) token() string {
	if it.own {
		return it.uuid.String()
	}
	return it.id
}

// key returns the item's idempotency key as keyOf does for its request.
func (it *item) key() (string, time.Time) {
	return it.token(), time.Unix(it.sec, int64(it.nanos)).UTC()
}

// request returns the add as a message.
func (it *item) request() *abacusv1.AddCountRequest {
	tok := &abacusv1.IdempotencyToken{Token: it.token()}
	if !it.noTime {
		tok.GenerationTime = &timestamppb.Timestamp{Seconds: it.sec, Nanos: it.nanos}
	}
	return &abacusv1.AddCountRequest{Namespace: it.ns, CounterName: it.counter, Delta: it.delta, IdempotencyToken: tok}
}

// validUTF8 reports whether the item's strings are valid UTF-8, as proto3
// requires of string fields.
func (it *item) validUTF8() bool {
	return utf8.ValidString(it.ns) && utf8.ValidString(it.counter) && (it.own || utf8.ValidString(it.id))
}

// The wire form of an add, written as the generated code would (fields in
// order, zero values left out), so that the server cannot tell the two
// apart. Every field number is below 16: each tag is one byte.

func (it *item) tokenLen() int {
	if it.own {
		return 36 // the UUID's text form
	}
	return len(it.id)
}

// sizes returns the sizes of the AddCountRequest, of its token and of the
// token's time, which its encoding needs in turn.
func (it *item) sizes() (add, key, ts int) {
	if it.sec != 0 {
		ts += 1 + protowire.SizeVarint(uint64(it.sec))
	}
	if it.nanos != 0 {
		ts += 1 + protowire.SizeVarint(uint64(int64(it.nanos)))
	}
	if l := it.tokenLen(); l > 0 {
		key += 1 + protowire.SizeBytes(l)
	}
	if !it.noTime {
		key += 1 + protowire.SizeBytes(ts)
	}
	add = 1 + protowire.SizeBytes(key)
	if it.ns != "" {
		add += 1 + protowire.SizeBytes(len(it.ns))
	}
	if it.counter != "" {
		add += 1 + protowire.SizeBytes(len(it.counter))
	}
	if it.delta != 0 {
		add += 1 + protowire.SizeVarint(uint64(it.delta))
	}
	return add, key, ts
}

// appendAdd appends the AddCountRequest, whose token and time take key and
// ts bytes (see sizes).
func (it *item) appendAdd(b []byte, key, ts int) []byte {
	if it.ns != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, it.ns)
	}
	if it.counter != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, it.counter)
	}
	if it.delta != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(it.delta))
	}
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(key))
	if l := it.tokenLen(); l > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l))
		if it.own {
			b = appendUUID(b, it.uuid)
		} else {
			b = append(b, it.id...)
		}
	}
	if !it.noTime {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(ts))
		if it.sec != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(it.sec))
		}
		if it.nanos != 0 {
			b = protowire.AppendTag(b, 2, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(it.nanos)))
		}
	}
	return b
}

// appendUUID appends u's text form, as uuid.UUID.String makes it.
func appendUUID(b []byte, u uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return append(b, s[:]...)
}

// addsMsg is the request of an AddCount RPC (the item one) or of an
// AddCounts RPC (the items of natural batch slots). wireCodec writes it
// straight onto the wire, with neither a message per item nor a token
// string. It is a proto.Message too (ProtoReflect), as interceptors and
// stats handlers that a caller installs expect of a request. An addsMsg is
// made for one attempt, and read only while it is sent.
type addsMsg struct {
	one   *item
	items []*slot
	msg   proto.Message // made by message, once
}

// message returns the request as a message.
func (m *addsMsg) message() proto.Message {
	if m.msg != nil {
		return m.msg
	}
	if m.one != nil {
		m.msg = m.one.request()
		return m.msg
	}
	req := &abacusv1.AddCountsRequest{Adds: make([]*abacusv1.AddCountRequest, len(m.items))}
	for i, s := range m.items {
		req.Adds[i] = s.it.request()
	}
	m.msg = req
	return m.msg
}

// ProtoReflect makes addsMsg a proto.Message: that of the request.
func (m *addsMsg) ProtoReflect() protoreflect.Message { return m.message().ProtoReflect() }

func (m *addsMsg) validUTF8() bool {
	if m.one != nil {
		return m.one.validUTF8()
	}
	for _, s := range m.items {
		if !s.it.validUTF8() {
			return false
		}
	}
	return true
}

func (m *addsMsg) size() int {
	if m.one != nil {
		add, _, _ := m.one.sizes()
		return add
	}
	n := 0
	for _, s := range m.items {
		add, _, _ := s.it.sizes()
		n += 1 + protowire.SizeBytes(add)
	}
	return n
}

func (m *addsMsg) appendTo(b []byte) []byte {
	if m.one != nil {
		_, key, ts := m.one.sizes()
		return m.one.appendAdd(b, key, ts)
	}
	for _, s := range m.items {
		add, key, ts := s.it.sizes()
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(add))
		b = s.it.appendAdd(b, key, ts)
	}
	return b
}

// wire returns the request to send for m: m itself, which wireCodec
// writes from the items, or, when the caller may have installed
// interceptors or stats handlers (WithDialOptions), the generated message
// (an *abacusv1.AddCountRequest or *abacusv1.AddCountsRequest), which is
// what they have always been given.
func (c *Client) wire(m *addsMsg) proto.Message {
	if c.o.dialAny {
		return m.message()
	}
	return m
}

// protoCodec is grpc-go's own codec, which wireCodec defers to.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// wireCodec is grpc-go's proto codec, but for two kinds of values: an
// addsMsg is written directly, and the reply of a write whose answer the
// client does not read (see conn.ack) is skipped instead of decoded. Its
// name is the proto codec's, so the server decodes the request as any other.
type wireCodec struct{}

// wireCall makes a call use wireCodec.
var wireCall = []grpc.CallOption{grpc.ForceCodecV2(wireCodec{})}

func (wireCodec) Name() string { return protoCodec.Name() }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*addsMsg)
	if !ok {
		return protoCodec.Marshal(v)
	}
	if !m.validUTF8() {
		// The generated code refuses to marshal invalid UTF-8: the call
		// fails as it would with it.
		return protoCodec.Marshal(m.message())
	}
	return wirebuf.Of(m.size(), m.appendTo), nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if _, ok := v.(*emptypb.Empty); ok {
		// An ack (conn.ack): the reply only echoes the tokens sent.
		return nil
	}
	return protoCodec.Unmarshal(data, v)
}
