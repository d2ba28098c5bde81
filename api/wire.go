package api

import (
	"context"
	"errors"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abacus-dev/abacus"
	abacusv1 "github.com/abacus-dev/abacus/gen/abacus/v1"
	"github.com/abacus-dev/abacus/gen/abacus/v1/abacusv1connect"
	"github.com/abacus-dev/abacus/internal/wirebuf"
)

// The gRPC server reads AddCounts requests, the bulk of a busy node's
// traffic, straight from the wire into the service's requests (addsWire),
// instead of into a message, a token and a timestamp and three strings per
// add that are converted and dropped at once: the generated decoding took a
// tenth of the node's CPU in batch ingest, and most of its allocations.
// The client writes its adds the same way (client/wire.go).
//
// The decoding is the generated code's, field by field: a field of a known
// number with another wire type is skipped as an unknown field, strings
// must be valid UTF-8, a message field given twice is merged, and malformed
// input is an error; FuzzAddsWire checks it against proto.Unmarshal.

// wireAdd is one AddCountRequest as the wire gives it, with the presence of
// the token and of its time, which the conversion to abacus.AddRequest
// needs (see tokenFromProto).
type wireAdd struct {
	ns, counter, token string
	delta              int64
	hasToken, hasTime  bool
	sec                int64
	nanos              int32
}

// addsWire is an AddCountsRequest decoded by serverCodec. Its strings are
// cut from one copy of the request's bytes. It is a proto.Message too
// (ProtoReflect), as interceptors and stats handlers expect of a request.
type addsWire struct {
	adds []wireAdd
	raw  string                     // the request's bytes, if it has adds
	msg  *abacusv1.AddCountsRequest // made by message, once
}

// addWire is an AddCountRequest decoded by serverCodec, as addsWire is for
// AddCounts.
type addWire struct {
	add wireAdd
	raw string
	msg *abacusv1.AddCountRequest // made by message, once
}

var errWire = errors.New("cannot parse invalid wire-format data")

// wireBuf is a request's bytes, and one string copy of them which every
// string field is cut from.
type wireBuf struct {
	b []byte
	s string
}

// decode reads an AddCountsRequest.
func (w *addsWire) decode(b []byte) error {
	buf := wireBuf{b: b}
	n := 0
	if err := buf.fields(0, len(b), func(num protowire.Number, typ protowire.Type, _ uint64, _, _ int) (bool, error) {
		if num == 1 && typ == protowire.BytesType {
			n++
		}
		return false, nil
	}); err != nil || n == 0 {
		return err
	}
	buf.s = string(b)
	w.raw = buf.s
	w.adds = make([]wireAdd, 0, n)
	return buf.fields(0, len(b), func(num protowire.Number, typ protowire.Type, _ uint64, lo, hi int) (bool, error) {
		if num != 1 || typ != protowire.BytesType {
			return false, nil
		}
		var a wireAdd
		err := a.decode(&buf, lo, hi)
		w.adds = append(w.adds, a)
		return true, err
	})
}

// decode reads an AddCountRequest.
func (w *addWire) decode(b []byte) error {
	buf := wireBuf{b: b, s: string(b)}
	w.raw = buf.s
	return w.add.decode(&buf, 0, len(b))
}

// request converts the add as addFromProto converts its message.
func (w *addWire) request() (abacus.AddRequest, error) {
	r, err := w.add.request()
	if err != nil {
		// The generated path's error, word for word (see addsWire.requests).
		var m abacusv1.AddCountRequest
		if err := proto.Unmarshal([]byte(w.raw), &m); err != nil {
			return abacus.AddRequest{}, err
		}
		return addFromProto(&m)
	}
	return r, nil
}

// message returns the request as a message.
func (w *addWire) message() *abacusv1.AddCountRequest {
	if w.msg == nil {
		w.msg = w.add.message()
	}
	return w.msg
}

// ProtoReflect makes addWire a proto.Message: that of the request.
func (w *addWire) ProtoReflect() protoreflect.Message { return w.message().ProtoReflect() }

// fields calls fn with each field of the message in b[lo:hi]: its number,
// its wire type, its value if a varint, and the bounds of its value (after
// the length of a BytesType). A field fn does not take (fn returns false)
// is skipped, as the generated code skips an unknown field or one of a
// known number with another wire type.
func (buf *wireBuf) fields(lo, hi int, fn func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error)) error {
	b := buf.b[:hi]
	for off := lo; off < hi; {
		tag, l := protowire.ConsumeVarint(b[off:])
		if l < 0 {
			return errWire
		}
		off += l
		num, typ := protowire.DecodeTag(tag)
		if tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) || typ == protowire.EndGroupType {
			return errWire
		}
		var v uint64
		vlo, vhi := off, off
		switch typ {
		case protowire.VarintType:
			if v, l = protowire.ConsumeVarint(b[off:]); l < 0 {
				return errWire
			}
			vhi = off + l
		case protowire.BytesType:
			var bs []byte
			if bs, l = protowire.ConsumeBytes(b[off:]); l < 0 {
				return errWire
			}
			vlo, vhi = off+l-len(bs), off+l
		}
		took, err := fn(num, typ, v, vlo, vhi)
		if err != nil {
			return err
		}
		if took {
			off = vhi
			continue
		}
		if l = protowire.ConsumeFieldValue(num, typ, b[off:]); l < 0 {
			return errWire
		}
		off += l
	}
	return nil
}

// text returns the string field at s[lo:hi], refused unless valid UTF-8.
func (buf *wireBuf) text(lo, hi int) (string, error) {
	v := buf.s[lo:hi]
	if !utf8.ValidString(v) {
		return "", errors.New("string field contains invalid UTF-8")
	}
	return v, nil
}

// decode reads an AddCountRequest from buf's [lo, hi), merging into a.
func (a *wireAdd) decode(buf *wireBuf, lo, hi int) error {
	return buf.fields(lo, hi, func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error) {
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			a.ns, err = buf.text(vlo, vhi)
		case num == 2 && typ == protowire.BytesType:
			a.counter, err = buf.text(vlo, vhi)
		case num == 3 && typ == protowire.VarintType:
			a.delta = int64(v)
		case num == 4 && typ == protowire.BytesType:
			a.hasToken = true
			err = a.decodeToken(buf, vlo, vhi)
		default:
			return false, nil
		}
		return true, err
	})
}

// decodeToken reads an IdempotencyToken from buf's [lo, hi), merging into
// a's.
func (a *wireAdd) decodeToken(buf *wireBuf, lo, hi int) error {
	return buf.fields(lo, hi, func(num protowire.Number, typ protowire.Type, v uint64, vlo, vhi int) (bool, error) {
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			a.token, err = buf.text(vlo, vhi)
		case num == 2 && typ == protowire.BytesType:
			a.hasTime = true
			err = buf.fields(vlo, vhi, func(num protowire.Number, typ protowire.Type, v uint64, _, _ int) (bool, error) {
				switch {
				case num == 1 && typ == protowire.VarintType:
					a.sec = int64(v)
				case num == 2 && typ == protowire.VarintType:
					a.nanos = int32(v)
				default:
					return false, nil
				}
				return true, nil
			})
		default:
			return false, nil
		}
		return true, err
	})
}

// request returns the add as the service takes it, or errRefused if
// addFromProto refuses its message (whose error the caller then takes from
// addFromProto itself).
func (a *wireAdd) request() (abacus.AddRequest, error) {
	r := abacus.AddRequest{Namespace: a.ns, Counter: a.counter, Delta: a.delta}
	if !a.hasToken {
		return r, nil
	}
	if a.token == "" {
		return r, errRefused
	}
	r.Token.ID = a.token
	if a.hasTime {
		// Timestamp.CheckValid and AsTime, on values: a Timestamp made here
		// would be allocated for each add, as CheckValid's error keeps it.
		if a.sec < minTimestamp || a.sec > maxTimestamp || a.nanos < 0 || a.nanos >= 1e9 {
			return r, errRefused
		}
		r.Token.Time = time.Unix(a.sec, int64(a.nanos)).UTC()
	}
	return r, nil
}

// The range of Timestamp.CheckValid: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59Z.
const (
	minTimestamp = -62135596800
	maxTimestamp = 253402300799
)

// errRefused marks an add that addFromProto refuses.
var errRefused = errors.New("refused")

// requests converts the adds as addsFromProto converts their message.
func (w *addsWire) requests() ([]abacus.AddRequest, error) {
	if err := checkBatch("adds", len(w.adds)); err != nil {
		return nil, err
	}
	out := make([]abacus.AddRequest, len(w.adds))
	for i := range w.adds {
		var err error
		if out[i], err = w.adds[i].request(); err != nil {
			// The error is the one addsFromProto gives, word for word: a
			// bad time's message prints the whole Timestamp, with unknown
			// fields that addsWire does not keep. Rare enough to decode
			// again.
			var m abacusv1.AddCountsRequest
			if err := proto.Unmarshal([]byte(w.raw), &m); err != nil {
				return nil, err
			}
			return addsFromProto(&m)
		}
	}
	return out, nil
}

// message returns the request as a message.
func (w *addsWire) message() *abacusv1.AddCountsRequest {
	if w.msg != nil {
		return w.msg
	}
	m := &abacusv1.AddCountsRequest{Adds: make([]*abacusv1.AddCountRequest, len(w.adds))}
	for i := range w.adds {
		m.Adds[i] = w.adds[i].message()
	}
	w.msg = m
	return m
}

// message returns the add as a message.
func (a *wireAdd) message() *abacusv1.AddCountRequest {
	r := &abacusv1.AddCountRequest{Namespace: a.ns, CounterName: a.counter, Delta: a.delta}
	if a.hasToken {
		r.IdempotencyToken = &abacusv1.IdempotencyToken{Token: a.token}
		if a.hasTime {
			r.IdempotencyToken.GenerationTime = &timestamppb.Timestamp{Seconds: a.sec, Nanos: a.nanos}
		}
	}
	return r
}

// ProtoReflect makes addsWire a proto.Message: that of the request.
func (w *addsWire) ProtoReflect() protoreflect.Message { return w.message().ProtoReflect() }

// protoCodec is grpc-go's own codec, which serverCodec defers to.
var protoCodec = encoding.GetCodecV2(grpcproto.Name)

// serverCodec is grpc-go's proto codec but for addsWire, which it decodes
// itself.
type serverCodec struct{}

func (serverCodec) Name() string { return grpcproto.Name }

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*addsResult)
	if !ok || !r.validUTF8() {
		// The generated code refuses invalid UTF-8: the call fails as it
		// would with it.
		if ok {
			v = r.message()
		}
		return protoCodec.Marshal(v)
	}
	return wirebuf.Of(r.size(), r.appendTo), nil
}

func (serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var decode func([]byte) error
	switch w := v.(type) {
	case *addsWire:
		decode = w.decode
	case *addWire:
		decode = w.decode
	default:
		return protoCodec.Unmarshal(data, v)
	}
	if len(data) == 1 {
		return decode(data[0].ReadOnlyData())
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decode(buf.ReadOnlyData())
}

// addsResult is the response of an AddCounts RPC, which serverCodec writes
// straight from the tokens, as the generated code would write
// addCountsResponse(toks): the tokens are the bulk of it, echoed back. It
// is a proto.Message too (ProtoReflect), for interceptors and stats
// handlers.
type addsResult struct {
	toks []abacus.Token
	msg  *abacusv1.AddCountsResponse // made by message, once
}

func (r *addsResult) message() *abacusv1.AddCountsResponse {
	if r.msg == nil {
		r.msg = addCountsResponse(r.toks)
	}
	return r.msg
}

// ProtoReflect makes addsResult a proto.Message: that of the response.
func (r *addsResult) ProtoReflect() protoreflect.Message { return r.message().ProtoReflect() }

func (r *addsResult) validUTF8() bool {
	for _, t := range r.toks {
		if !utf8.ValidString(t.ID) {
			return false
		}
	}
	return true
}

// tokenSizes returns the sizes of an AddCountResponse of t, of its token
// and of the token's time.
func tokenSizes(t *abacus.Token) (res, tok, ts int) {
	if t.ID == "" && t.Time.IsZero() {
		return 0, 0, 0
	}
	if !t.Time.IsZero() {
		if sec := t.Time.Unix(); sec != 0 {
			ts += 1 + protowire.SizeVarint(uint64(sec))
		}
		if n := t.Time.Nanosecond(); n != 0 {
			ts += 1 + protowire.SizeVarint(uint64(n))
		}
		tok += 1 + protowire.SizeBytes(ts)
	}
	if t.ID != "" {
		tok += 1 + protowire.SizeBytes(len(t.ID))
	}
	return 1 + protowire.SizeBytes(tok), tok, ts
}

func (r *addsResult) size() int {
	n := 0
	for i := range r.toks {
		res, _, _ := tokenSizes(&r.toks[i])
		n += 1 + protowire.SizeBytes(res)
	}
	return n
}

// appendTo appends the response, fields in order and zero values left out,
// as the generated code writes them.
func (r *addsResult) appendTo(b []byte) []byte {
	for i := range r.toks {
		t := &r.toks[i]
		res, tok, ts := tokenSizes(t)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(res))
		if res == 0 {
			continue
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(tok))
		if t.ID != "" {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, t.ID)
		}
		if !t.Time.IsZero() {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(ts))
			if sec := t.Time.Unix(); sec != 0 {
				b = protowire.AppendTag(b, 1, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(sec))
			}
			if n := t.Time.Nanosecond(); n != 0 {
				b = protowire.AppendTag(b, 2, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(n))
			}
		}
	}
	return b
}

// counterServiceDesc is the generated CounterService, with AddCounts and
// AddCount served from addsWire and addWire.
func counterServiceDesc() *grpc.ServiceDesc {
	d := abacusv1.CounterService_ServiceDesc
	d.Methods = slices.Clone(d.Methods)
	for i := range d.Methods {
		switch d.Methods[i].MethodName {
		case "AddCounts":
			d.Methods[i].Handler = wireHandler(abacusv1.CounterService_AddCounts_FullMethodName,
				abacusv1connect.CounterServiceAddCountsProcedure, (*ops).addCountsWire)
		case "AddCount":
			d.Methods[i].Handler = wireHandler(abacusv1.CounterService_AddCount_FullMethodName,
				abacusv1connect.CounterServiceAddCountProcedure, (*ops).addCountWire)
		}
	}
	return &d
}

// wireHandler is the generated handler of a method, for a request of type
// *W that serverCodec decodes, served by op.
func wireHandler[W, Res any](method, procedure string, op func(*ops, context.Context, *W) (Res, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(W)
		if err := dec(in); err != nil {
			return nil, err
		}
		o := srv.(grpcCounterServer).o
		call := func(ctx context.Context, req any) (any, error) {
			return grpcCall(ctx, o, procedure, func(ctx context.Context, w *W) (Res, error) { return op(o, ctx, w) }, req.(*W))
		}
		if interceptor == nil {
			return call(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, call)
	}
}
